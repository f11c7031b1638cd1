/// Why a token was refused; `reason` is safe to send to the client (it never contains the token).
public enum TokenError: Error, Equatable, Sendable {
    case missing
    case malformed(String)
    case unsupportedAlgorithm
    case invalidSignature
    case expired
    case notYetValid
    case issuedInFuture
    case invalidClaim(String)

    public var reason: String {
        switch self {
        case .missing: "missing token"
        case .malformed(let why): "malformed token: \(why)"
        case .unsupportedAlgorithm: "unsupported token algorithm (HS256, HS384 and HS512 only)"
        case .invalidSignature: "invalid token signature"
        case .expired: "token expired"
        case .notYetValid: "token not valid yet"
        case .issuedInFuture: "token issued in the future"
        case .invalidClaim(let claim): "invalid claim \"\(claim)\""
        }
    }
}
