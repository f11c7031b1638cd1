/// `philote demo`: the chat page at `/demo` and a token endpoint that gives anyone a token for its channel.
public struct DemoSettings: Sendable {
    /// The only secret the demo runs with: tokens are given to anyone, so they must be worth nothing elsewhere.
    public static let secret = "development-secret-do-not-use-in-production"
    public var channel = "chat"
    /// Short, so that the page shows a token refreshed in place within a minute.
    public var tokenLifetime = 60

    public init() {}
}
