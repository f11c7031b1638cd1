/// The record content types a connection carries after the handshake (RFC 8446 section 5.1).
enum TLSContentType: UInt8 {
    case changeCipherSpec = 20
    case alert = 21
    case handshake = 22
    case applicationData = 23
}
