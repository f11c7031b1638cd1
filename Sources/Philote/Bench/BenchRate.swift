/// How fast `philote bench` publishes: a fixed total rate, open-loop (messages are due on a clock that the
/// server cannot slow), or as fast as the server takes them within a window of messages in flight.
public enum BenchRate: Equatable, Sendable, CustomStringConvertible {
    /// Messages per second over all publishers.
    case fixed(Double)
    case max

    /// "max", or a positive number of messages per second ("2000", "0.5", "10k").
    public init?(argument: String) {
        if argument.lowercased() == "max" {
            self = .max
            return
        }
        var text = Substring(argument)
        var scale = 1.0
        if let last = text.last, last == "k" || last == "K" {
            scale = 1000
            text = text.dropLast()
        }
        guard let value = Double(text), value.isFinite, value > 0, value * scale <= 100_000_000 else { return nil }
        self = .fixed(value * scale)
    }

    public var description: String {
        switch self {
        case .max: "max"
        case .fixed(let value): value == value.rounded() ? String(Int(value)) : String(value)
        }
    }
}
