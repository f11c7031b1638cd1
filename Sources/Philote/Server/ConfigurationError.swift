/// A bad environment variable: names it and says what it accepts. The executable exits 2 on it.
public struct ConfigurationError: Error, CustomStringConvertible, Sendable {
    public var variable: String
    public var message: String

    public init(_ variable: String, _ message: String) {
        self.variable = variable
        self.message = message
    }

    public var description: String { "\(variable): \(message)" }
}
