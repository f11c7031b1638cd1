/// The pub/sub side of one open connection: who it is (the issuer id the others see) and what it may do.
public final class Session {
    /// unowned(unsafe): the connection owns its session (`userData`) and drops it when it closes, before
    /// it can go away; a checked reference would cost atomics on every delivery.
    public unowned(unsafe) let connection: Connection
    public let issuer: String
    let permissions: Permissions
    let tokenKey: String
    /// For each channel of `permissions.read`, this session's index in that channel's subscriber list.
    var positions: [Int]
    /// The hub's publish number when this session subscribed (see `Hub.sequence`).
    var subscribedAt: UInt64 = 0

    init(connection: Connection, issuer: String, permissions: Permissions, tokenKey: String) {
        self.connection = connection
        self.issuer = issuer
        self.permissions = permissions
        self.tokenKey = tokenKey
        positions = Array(repeating: -1, count: permissions.read.count)
    }
}
