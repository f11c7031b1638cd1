/// Where a component writes its log lines. Layers below `Server/` (the broker) log through this protocol, so
/// they depend on no server type; the server hands them its own logger, which conforms.
/// Callers never pass tokens, secrets or payloads.
public protocol LogSink: Sendable {
    /// Writes `message` with `fields` (in this order) if `level` is enabled.
    func log(_ level: LogLevel, _ message: String, _ fields: KeyValuePairs<String, String>)
    /// Whether a line at `level` would be written: lets a caller skip building costly fields.
    func enabled(_ level: LogLevel) -> Bool
}

extension LogSink {
    public func debug(_ message: String, _ fields: KeyValuePairs<String, String> = [:]) { log(.debug, message, fields) }
    public func info(_ message: String, _ fields: KeyValuePairs<String, String> = [:]) { log(.info, message, fields) }
    public func warning(_ message: String, _ fields: KeyValuePairs<String, String> = [:]) {
        log(.warning, message, fields)
    }
    public func error(_ message: String, _ fields: KeyValuePairs<String, String> = [:]) { log(.error, message, fields) }
}
