/// The claims Philote reads from a token; others are ignored.
public struct Claims: Equatable, Sendable {
    public var read: [String] = []
    public var write: [String] = []
    public var api = false
    public var expiresAt: Int64?
    public var notBefore: Int64?
    public var issuedAt: Int64?

    public init(read: [String] = [], write: [String] = [], api: Bool = false, expiresAt: Int64? = nil) {
        self.read = read
        self.write = write
        self.api = api
        self.expiresAt = expiresAt
    }
}
