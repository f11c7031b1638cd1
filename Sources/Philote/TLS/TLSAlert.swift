/// The alerts the server sends or tells apart (RFC 8446 section 6, RFC 5246 section 7.2).
enum TLSAlert: UInt8, Sendable {
    case closeNotify = 0
    case unexpectedMessage = 10
    case badRecordMAC = 20
    case recordOverflow = 22
    case handshakeFailure = 40
    case illegalParameter = 47
    case decodeError = 50
    case protocolVersion = 70
    case internalError = 80
    case userCanceled = 90
    case noRenegotiation = 100
}
