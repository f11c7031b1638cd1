/// Close status codes this server sends, and the rule for which codes a peer may send (RFC 6455 section 7.4).
public enum CloseCode: UInt16, Sendable {
    case normal = 1000
    case goingAway = 1001
    case protocolError = 1002
    case unsupportedData = 1003
    case invalidPayload = 1007
    case policyViolation = 1008
    case messageTooBig = 1009
    case internalError = 1011
    case tokenExpired = 4001

    /// Whether a peer may put `code` on the wire. 1004-1006 and 1015 are reserved for local use, 1016-2999
    /// are unassigned; 3000-4999 belong to libraries and applications.
    public static func isValidOnWire(_ code: UInt16) -> Bool {
        switch code {
        case 1000...1003, 1007...1014, 3000...4999: true
        default: false
        }
    }
}
