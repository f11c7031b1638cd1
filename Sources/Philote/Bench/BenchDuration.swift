/// A duration argument of `philote bench` in nanoseconds: a number with a unit, `500ms`, `30s`, `2m`, `1h`,
/// or a sum like `1m30s`; a bare number is seconds, and decimals are allowed (`1.5s`).
public enum BenchDuration {
    public static func nanoseconds(_ text: String) -> UInt64? {
        if let seconds = Double(text) { return convert(seconds, unit: 1e9) }
        var total = 0.0
        var rest = Substring(text)
        guard !rest.isEmpty else { return nil }
        while !rest.isEmpty {
            let number = rest.prefix { $0.isASCII && ($0.isNumber || $0 == ".") }
            guard !number.isEmpty, let value = Double(number) else { return nil }
            rest = rest.dropFirst(number.count)
            let unitText = rest.prefix { $0.isASCII && $0.isLetter }
            rest = rest.dropFirst(unitText.count)
            let unit: Double
            switch unitText {
            case "ns": unit = 1
            case "us": unit = 1e3
            case "ms": unit = 1e6
            case "s": unit = 1e9
            case "m": unit = 60e9
            case "h": unit = 3600e9
            default: return nil
            }
            total += value * unit
        }
        return convert(total, unit: 1)
    }

    private static func convert(_ value: Double, unit: Double) -> UInt64? {
        let nanoseconds = value * unit
        // Up to a year: anything longer is a typo, and the conversion below must not overflow.
        guard nanoseconds.isFinite, nanoseconds >= 0, nanoseconds <= 366 * 86400e9 else { return nil }
        return UInt64(nanoseconds)
    }

    /// `1.5s`, `250ms`, `30s`: for messages.
    public static func text(_ nanoseconds: UInt64) -> String {
        if nanoseconds % 1_000_000_000 == 0 { return "\(nanoseconds / 1_000_000_000)s" }
        if nanoseconds % 1_000_000 == 0 { return "\(nanoseconds / 1_000_000)ms" }
        return "\(Double(nanoseconds) / 1e9)s"
    }
}
