import ArgumentParser

/// A token lifetime for `--ttl`: whole numbers with a unit, `30s`, `15m`, `1h`, `2d`, or a sum of them like
/// `1h30m` (a bare number is seconds). Kept to whole seconds because `exp` is an integer claim.
struct TokenLifetime: ExpressibleByArgument {
    /// More than a century is certainly a typo (and would overflow nothing, but mean nothing either).
    static let maxSeconds: Int64 = 100 * 365 * 86400

    let seconds: Int64

    init?(argument: String) {
        guard let seconds = Self.parse(argument) else { return nil }
        self.seconds = seconds
    }

    static func parse(_ text: String) -> Int64? {
        if let plain = Int64(text) { return plain > 0 && plain <= maxSeconds ? plain : nil }
        var total: Int64 = 0
        var number: Int64?
        for char in text {
            if let digit = char.wholeNumberValue, char.isASCII {
                let (times, overflow1) = (number ?? 0).multipliedReportingOverflow(by: 10)
                let (sum, overflow2) = times.addingReportingOverflow(Int64(digit))
                guard !overflow1, !overflow2, sum <= maxSeconds else { return nil }
                number = sum
                continue
            }
            let unit: Int64
            switch char {
            case "s": unit = 1
            case "m": unit = 60
            case "h": unit = 3600
            case "d": unit = 86400
            default: return nil
            }
            guard let value = number else { return nil }
            let (product, overflow) = value.multipliedReportingOverflow(by: unit)
            guard !overflow, product <= maxSeconds else { return nil }
            total += product
            number = nil
        }
        // Every number needs its unit (only a lone number may stand bare), and the sum must be positive.
        guard number == nil, total > 0, total <= maxSeconds else { return nil }
        return total
    }
}
