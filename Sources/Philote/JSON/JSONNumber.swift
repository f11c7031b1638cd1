/// A number read from JSON: its value, and whether its text had neither fraction nor exponent (`3` but not
/// `3.0` or `3e0`), for callers that want a whole number.
public struct JSONNumber: Equatable, Sendable {
    public var value: Double
    public var isInteger: Bool

    public init(value: Double, isInteger: Bool) {
        self.value = value
        self.isInteger = isInteger
    }
}
