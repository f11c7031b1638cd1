/// The claims Philote reads from a token; others are ignored.
public struct Claims: Equatable, Sendable {
    public var read: [String] = []
    public var write: [String] = []
    public var api = false
    /// `exp`, `nbf`, `iat`: Unix seconds, fractions kept (a JWT NumericDate may have them, and the checks have no
    /// leeway).
    public var expiresAt: Double?
    public var notBefore: Double?
    public var issuedAt: Double?

    public init(read: [String] = [], write: [String] = [], api: Bool = false, expiresAt: Double? = nil) {
        self.read = read
        self.write = write
        self.api = api
        self.expiresAt = expiresAt
    }
}
