/// Builds the Prometheus text exposition format (version 0.0.4), the one every Prometheus-compatible
/// scraper reads: per family a `# HELP` and a `# TYPE` line, then one `name{label="value"} number` line
/// per sample. Built once per scrape, never on the message path.
public struct PrometheusText: Sendable {
    public enum Kind: String, Sendable {
        case counter, gauge
    }

    public static let contentType = "text/plain; version=0.0.4; charset=utf-8"

    public private(set) var text = ""

    public init() {}

    /// Starts a metric family; its samples follow.
    public mutating func family(_ name: String, _ kind: Kind, help: String) {
        text += "# HELP \(name) \(Self.escapeHelp(help))\n# TYPE \(name) \(kind.rawValue)\n"
    }

    public mutating func sample(_ name: String, labels: KeyValuePairs<String, String> = [:], _ value: String) {
        text += name
        if !labels.isEmpty {
            text += "{"
            var first = true
            for (key, labelValue) in labels {
                if !first { text += "," }
                first = false
                text += "\(key)=\"\(Self.escapeLabelValue(labelValue))\""
            }
            text += "}"
        }
        text += " \(value)\n"
    }

    /// A family with one unlabelled sample.
    public mutating func single(_ name: String, _ kind: Kind, help: String, _ value: String) {
        family(name, kind, help: help)
        sample(name, value)
    }

    /// A family with one sample per value of `label`.
    public mutating func labelled(
        _ name: String, _ kind: Kind, help: String, label: String, _ samples: [(String, String)]
    ) {
        family(name, kind, help: help)
        for (labelValue, value) in samples { sample(name, labels: [label: labelValue], value) }
    }

    /// A number as Prometheus parses it (Go's ParseFloat): integers without a fraction, `+Inf`, `NaN`.
    public static func number(_ value: Double) -> String {
        if value.isNaN { return "NaN" }
        if value.isInfinite { return value > 0 ? "+Inf" : "-Inf" }
        if value == value.rounded(), abs(value) < 9_007_199_254_740_992 { return String(Int64(value)) }
        return String(value)
    }

    static func escapeHelp(_ text: String) -> String {
        var out = ""
        for character in text.unicodeScalars {
            switch character {
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            default: out.unicodeScalars.append(character)
            }
        }
        return out
    }

    static func escapeLabelValue(_ text: String) -> String {
        var out = ""
        for character in text.unicodeScalars {
            switch character {
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\"": out += "\\\""
            default: out.unicodeScalars.append(character)
            }
        }
        return out
    }
}
