/// The original's levels, in order of severity (`LOGLEVEL`).
public enum LogLevel: Int, Comparable, Sendable, CaseIterable {
    case debug, info, warning, error, fatal, panic

    public init?(name: String) {
        switch name.lowercased() {
        case "debug": self = .debug
        case "info": self = .info
        case "warning", "warn": self = .warning
        case "error": self = .error
        case "fatal": self = .fatal
        case "panic": self = .panic
        default: return nil
        }
    }

    public var name: String {
        switch self {
        case .debug: "debug"
        case .info: "info"
        case .warning: "warning"
        case .error: "error"
        case .fatal: "fatal"
        case .panic: "panic"
        }
    }

    public static func < (lhs: LogLevel, rhs: LogLevel) -> Bool { lhs.rawValue < rhs.rawValue }
}
