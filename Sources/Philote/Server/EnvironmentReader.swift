/// Typed reads of environment variables; each failure names the variable and the accepted values.
struct EnvironmentReader {
    let environment: [String: String]

    init(_ environment: [String: String]) {
        self.environment = environment
    }

    func integer(_ name: String, in range: ClosedRange<Int>) throws(ConfigurationError) -> Int? {
        guard let text = environment[name] else { return nil }
        guard let value = Int(text.trimmingHTTPWhitespace()), range.contains(value) else {
            throw ConfigurationError(
                name, "must be an integer from \(range.lowerBound) to \(range.upperBound), got \"\(text)\"")
        }
        return value
    }

    /// The boolean spellings Go's strconv.ParseBool accepts, which the original used.
    func boolean(_ name: String) throws(ConfigurationError) -> Bool? {
        guard let text = environment[name] else { return nil }
        switch text.trimmingHTTPWhitespace() {
        case "1", "t", "T", "true", "TRUE", "True": return true
        case "0", "f", "F", "false", "FALSE", "False": return false
        default: throw ConfigurationError(name, "must be true or false (or 1, 0, t, f), got \"\(text)\"")
        }
    }

    /// A duration in milliseconds from seconds (`30`, `0.5`) or with a unit (`500ms`, `30s`, `2m`).
    func duration(_ name: String, allowZero: Bool = false) throws(ConfigurationError) -> UInt64? {
        guard let text = environment[name] else { return nil }
        let trimmed = String(text.trimmingHTTPWhitespace())
        var number = Substring(trimmed)
        var scale = 1000.0
        if number.hasSuffix("ms") {
            number = number.dropLast(2)
            scale = 1
        } else if number.hasSuffix("s") {
            number = number.dropLast()
        } else if number.hasSuffix("m") {
            number = number.dropLast()
            scale = 60_000
        }
        let accepted =
            "a duration in seconds (e.g. 30 or 0.5) or with a unit (500ms, 30s, 2m)\(allowZero ? ", 0 to disable" : "")"
        // Plain decimal digits only: Double would also take "1e3", "0x10" or "nan".
        let isDecimal = !number.isEmpty && number.allSatisfy { $0.isASCII && ($0.isNumber || $0 == ".") }
        guard isDecimal, let value = Double(number), value.isFinite, value >= 0, value * scale < 1e12 else {
            throw ConfigurationError(name, "must be \(accepted), got \"\(text)\"")
        }
        let milliseconds = UInt64((value * scale).rounded())
        if milliseconds == 0 && !allowZero {
            throw ConfigurationError(name, "must be \(accepted) and above zero, got \"\(text)\"")
        }
        return milliseconds
    }
}
