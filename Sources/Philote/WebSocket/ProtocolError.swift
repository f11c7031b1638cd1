/// A violation by the peer that ends the connection; each knows the close code it is answered with.
public enum ProtocolError: Error, Equatable, Sendable {
    /// RFC 6455 framing or sequencing rule broken: close 1002.
    case protocolViolation(String)
    /// A text message or close reason that is not UTF-8: close 1007.
    case invalidUTF8
    /// A message larger than the configured maximum: close 1009.
    case messageTooBig
    /// Compressed data that does not inflate (permessage-deflate): close 1007, the payload is inconsistent.
    case invalidCompressedData

    public var closeCode: CloseCode {
        switch self {
        case .protocolViolation: .protocolError
        case .invalidUTF8, .invalidCompressedData: .invalidPayload
        case .messageTooBig: .messageTooBig
        }
    }

    /// A short reason for the close frame (at most 123 bytes, never peer data).
    public var reason: String {
        switch self {
        case .protocolViolation(let why): why
        case .invalidUTF8: "invalid UTF-8"
        case .messageTooBig: "message too big"
        case .invalidCompressedData: "invalid compressed data"
        }
    }
}
