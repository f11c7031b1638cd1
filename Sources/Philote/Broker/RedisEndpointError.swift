/// Why a Redis URL (or a list of them) was refused. `message` says what is wrong and shows the URL with its
/// password hidden; the configuration reader names the variable it came from.
public struct RedisEndpointError: Error, CustomStringConvertible, Sendable {
    public var message: String

    public init(_ message: String) {
        self.message = message
    }

    public var description: String { message }
}
