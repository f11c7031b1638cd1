#if canImport(Glibc)
    import Glibc
#endif

/// Lines on stderr in the original's shape: `time=... level=... msg="..." key=value`, or with
/// `LOG_FORMAT=json` the same fields as one JSON object per line. Whole lines go to `LogWriter`, whose thread
/// writes them, so lines from several loops never interleave and a stalled log reader never stalls a loop.
/// Callers never pass tokens, secrets or payloads.
public struct Logger: LogSink {
    public var level: LogLevel
    public var format: LogFormat

    public init(level: LogLevel, format: LogFormat = .text) {
        self.level = level
        self.format = format
    }

    @inline(__always)
    public func enabled(_ level: LogLevel) -> Bool { level >= self.level }

    public func log(_ level: LogLevel, _ message: String, _ fields: KeyValuePairs<String, String> = [:]) {
        guard enabled(level) else { return }
        let line = Self.line(format, time: Self.timestamp(), level: level, message: message, fields)
        LogWriter.standardError.write(Array(line.utf8), format: format)
    }

    /// Before the process exits: what is queued is written, unless stderr takes nothing for `milliseconds`.
    public static func flush(milliseconds: Int = 2000) {
        LogWriter.standardError.flush(milliseconds: milliseconds)
    }

    /// One whole line, newline included. JSON keys come in the text form's order: `time`, `level`, `msg`,
    /// then the fields (all strings), escaped as the server escapes JSON strings everywhere.
    static func line(
        _ format: LogFormat, time: String, level: LogLevel, message: String, _ fields: KeyValuePairs<String, String>
    ) -> String {
        switch format {
        case .text:
            var line = "time=\(time) level=\(level.name) msg=\(quote(message))"
            for (key, value) in fields { line += " \(key)=\(quote(value))" }
            return line + "\n"
        case .json:
            var line = #"{"time":"\#(time)","level":"\#(level.name)","msg":"# + JSONStringEncoder.quoted(message)
            for (key, value) in fields {
                line += "," + JSONStringEncoder.quoted(key) + ":" + JSONStringEncoder.quoted(value)
            }
            return line + "}\n"
        }
    }

    // debug, info, warning and error come from LogSink.

    /// Quotes a value when it has spaces, quotes or `=`, like logfmt.
    static func quote(_ value: String) -> String {
        let needsQuotes = value.isEmpty || value.utf8.contains { $0 <= 0x20 || $0 == 0x22 || $0 == 0x3D || $0 == 0x5C }
        guard needsQuotes else { return value }
        var out = "\""
        for scalar in value.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }

    /// RFC 3339 UTC with milliseconds.
    static func timestamp() -> String {
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME, &spec)
        var seconds = spec.tv_sec
        var parts = tm()
        gmtime_r(&seconds, &parts)
        func pad(_ value: Int32, _ width: Int) -> String {
            let digits = String(value)
            return String(repeating: "0", count: max(0, width - digits.count)) + digits
        }
        return "\(pad(parts.tm_year + 1900, 4))-\(pad(parts.tm_mon + 1, 2))-\(pad(parts.tm_mday, 2))T"
            + "\(pad(parts.tm_hour, 2)):\(pad(parts.tm_min, 2)):\(pad(parts.tm_sec, 2)).\(pad(Int32(spec.tv_nsec / 1_000_000), 3))Z"
    }
}
