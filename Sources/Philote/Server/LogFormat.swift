/// How log lines are written (`LOG_FORMAT`): logfmt-style text, as the original did, or one JSON object per
/// line for log shippers.
public enum LogFormat: String, Sendable, CaseIterable {
    case text, json

    public init?(name: String) {
        switch name.lowercased() {
        case "text": self = .text
        case "json": self = .json
        default: return nil
        }
    }
}
