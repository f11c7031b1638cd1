/// A client's publish: `{"channel": "...", "data": "..."}`, strings decoded to UTF-8 bytes; or, when `token` is
/// set, a token refresh: `{"auth": "<jwt>"}` with neither a `channel` nor a `data` member (README "Token refresh").
public struct ClientMessage: Equatable, Sendable {
    public var channel: [UInt8]
    public var data: [UInt8]
    /// The new token of a refresh; nil for a publish.
    public var token: [UInt8]?

    public init(channel: [UInt8], data: [UInt8], token: [UInt8]? = nil) {
        self.channel = channel
        self.data = data
        self.token = token
    }
}
