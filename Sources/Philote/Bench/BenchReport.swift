/// The result of a bench run, as the final table on standard output or as one JSON document (`--json`):
/// the same figures either way. Latencies are from the merged histogram (bounded error, see
/// `LatencyHistogram`), over the messages sent in the measured window.
public struct BenchReport: Sendable {
    public var url: String
    public var settings: BenchSettings
    public var tally: BenchTally
    public var latency: LatencyHistogram
    /// From the first connect to the last connection settled (open or failed).
    public var connectSeconds: Double
    /// The measured window as it ran (shorter than --duration after Ctrl-C).
    public var measuredSeconds: Double
    /// Deliveries the window's publishes called for (each to every subscriber of its channel), and of those
    /// the ones that never came, and copies received twice.
    public var expected: UInt64
    public var lost: UInt64
    public var duplicates: UInt64
    public var interrupted: Bool

    public init(
        url: String, settings: BenchSettings, tally: BenchTally, latency: LatencyHistogram, connectSeconds: Double,
        measuredSeconds: Double, expected: UInt64, lost: UInt64, duplicates: UInt64, interrupted: Bool
    ) {
        self.url = url
        self.settings = settings
        self.tally = tally
        self.latency = latency
        self.connectSeconds = connectSeconds
        self.measuredSeconds = measuredSeconds
        self.expected = expected
        self.lost = lost
        self.duplicates = duplicates
        self.interrupted = interrupted
    }

    public static let quantiles: [(name: String, q: Double)] = [
        ("p50", 0.5), ("p90", 0.9), ("p99", 0.99), ("p99.9", 0.999),
    ]

    var connections: Int { tally.subscribersOpen + tally.publishersOpen }
    var connectRate: Double { connectSeconds > 0 ? Double(connections) / connectSeconds : 0 }
    var publishedPerSecond: Double { perSecond(tally.publishedMeasured) }
    var deliveredPerSecond: Double { perSecond(tally.deliveredMeasured) }

    private func perSecond(_ count: UInt64) -> Double {
        measuredSeconds > 0 ? Double(count) / measuredSeconds : 0
    }

    /// The table for people, one figure a line.
    public func table() -> String {
        var rows: [(String, String)] = []
        rows.append(("target", url))
        rows.append(
            (
                "workload",
                "\(settings.subscribers) subscribers, \(settings.publishers) publishers, \(settings.channels) channels, "
                    + "rate \(rateText), size \(settings.size), \(settings.workers) workers"
            ))
        rows.append(
            (
                "connections",
                "\(connections) open, \(tally.connectFailures) failed (\(tally.handshakeFailures) refused), "
                    + "\(Self.fixed(connectSeconds, 2)) s, \(Self.fixed(connectRate, 0))/s"
            ))
        if let first = tally.firstFailure { rows.append(("first failure", first)) }
        rows.append(("measured", "\(Self.fixed(measuredSeconds, 2)) s\(interrupted ? " (interrupted)" : "")"))
        rows.append(
            (
                "published",
                "\(tally.publishedMeasured) (\(Self.fixed(publishedPerSecond, 0))/s), backlog \(tally.backlog)"
                    + (tally.stalls > 0 ? ", stalls \(tally.stalls)" : "")
                    + (tally.publishedCompressed > 0 ? ", \(tally.publishedCompressed) compressed" : "")
            ))
        rows.append(("delivered", "\(tally.deliveredMeasured) (\(Self.fixed(deliveredPerSecond, 0))/s)"))
        rows.append(("expected", "\(expected)"))
        rows.append(("lost", "\(lost)"))
        rows.append(("duplicates", "\(duplicates)"))
        var latencyText = Self.quantiles.map { "\($0.name) \(Self.milliseconds(latency.value(atQuantile: $0.q)))" }
        latencyText.append("max \(Self.milliseconds(latency.max))")
        rows.append(("latency ms", latencyText.joined(separator: "  ")))
        rows.append(("close codes", closeCodesText))
        if tally.protocolErrors > 0 { rows.append(("protocol errors", "\(tally.protocolErrors)")) }
        if tally.otherMessages > 0 { rows.append(("other messages", "\(tally.otherMessages)")) }
        let width = rows.map(\.0.count).max() ?? 0
        return rows.map { $0.0 + String(repeating: " ", count: width - $0.0.count) + "  " + $0.1 }
            .joined(separator: "\n") + "\n"
    }

    /// The same figures as one JSON object (latencies in microseconds).
    public func json() -> String {
        var latencyFields = Self.quantiles.map {
            "\(Self.quoted($0.name)):\(Self.fixed(Double(latency.value(atQuantile: $0.q)) / 1000, 1))"
        }
        latencyFields.append("\"max\":\(Self.fixed(Double(latency.max) / 1000, 1))")
        latencyFields.append("\"mean\":\(Self.fixed(latency.mean / 1000, 1))")
        latencyFields.append("\"count\":\(latency.count)")
        let codes = tally.closeCodes.keys.sorted().map { "\(Self.quoted(String($0))):\(tally.closeCodes[$0]!)" }
        var fields: [String] = []
        fields.append("\"url\":\(Self.quoted(url))")
        fields.append("\"subscribers\":\(settings.subscribers)")
        fields.append("\"publishers\":\(settings.publishers)")
        fields.append("\"channels\":\(settings.channels)")
        switch settings.rate {
        case .max: fields.append("\"rate\":\"max\"")
        case .fixed(let value): fields.append("\"rate\":\(Self.fixed(value, 3))")
        }
        fields.append("\"window\":\(settings.window)")
        fields.append("\"size\":\(settings.size)")
        fields.append("\"workers\":\(settings.workers)")
        fields.append(
            "\"connect\":{\"open\":\(connections),\"subscribers\":\(tally.subscribersOpen),"
                + "\"publishers\":\(tally.publishersOpen),\"failed\":\(tally.connectFailures),"
                + "\"refused\":\(tally.handshakeFailures),\"seconds\":\(Self.fixed(connectSeconds, 3)),"
                + "\"per_second\":\(Self.fixed(connectRate, 1))"
                + (tally.firstFailure.map { ",\"first_failure\":\(Self.quoted($0))" } ?? "") + "}")
        fields.append("\"measured_seconds\":\(Self.fixed(measuredSeconds, 3))")
        fields.append("\"interrupted\":\(interrupted)")
        fields.append("\"published\":\(tally.publishedMeasured)")
        fields.append("\"published_per_second\":\(Self.fixed(publishedPerSecond, 1))")
        fields.append("\"backlog\":\(tally.backlog)")
        fields.append("\"stalls\":\(tally.stalls)")
        fields.append("\"published_compressed\":\(tally.publishedCompressed)")
        fields.append("\"delivered\":\(tally.deliveredMeasured)")
        fields.append("\"delivered_per_second\":\(Self.fixed(deliveredPerSecond, 1))")
        fields.append("\"expected\":\(expected)")
        fields.append("\"lost\":\(lost)")
        fields.append("\"duplicates\":\(duplicates)")
        fields.append("\"latency_us\":{\(latencyFields.joined(separator: ","))}")
        fields.append("\"close_codes\":{\(codes.joined(separator: ","))}")
        fields.append("\"protocol_errors\":\(tally.protocolErrors)")
        fields.append("\"other_messages\":\(tally.otherMessages)")
        return "{" + fields.joined(separator: ",") + "}\n"
    }

    /// The line printed every second while publishing.
    public static func liveLine(
        elapsed: Double, measuring: Bool, connections: Int, publishedPerSecond: Double, deliveredPerSecond: Double,
        latency: LatencyHistogram, errors: UInt64, backlog: UInt64
    ) -> String {
        let phase = measuring ? "run" : "warm-up"
        var line = "\(phase) \(fixed(elapsed, 0))s: \(connections) conns, pub \(fixed(publishedPerSecond, 0))/s, "
        line += "deliv \(fixed(deliveredPerSecond, 0))/s"
        if latency.count > 0 {
            line += ", p50 \(milliseconds(latency.value(atQuantile: 0.5))) ms, p99 \(milliseconds(latency.value(atQuantile: 0.99))) ms"
        }
        line += ", errors \(errors)"
        if backlog > 0 { line += ", backlog \(backlog)" }
        return line
    }

    private var rateText: String {
        switch settings.rate {
        case .max: "max (window \(settings.window))"
        case .fixed: "\(settings.rate)/s"
        }
    }

    private var closeCodesText: String {
        if tally.closeCodes.isEmpty { return "none" }
        return tally.closeCodes.keys.sorted().map { code in
            "\(code == 0 ? "dropped" : String(code)) x\(tally.closeCodes[code]!)"
        }.joined(separator: ", ")
    }

    /// Nanoseconds as milliseconds with three decimals.
    static func milliseconds(_ nanoseconds: UInt64) -> String { fixed(Double(nanoseconds) / 1e6, 3) }

    /// `value` with `digits` decimals, without Foundation's formatter.
    public static func fixed(_ value: Double, _ digits: Int) -> String {
        guard value.isFinite else { return "0" }
        var scale = 1.0
        for _ in 0..<digits { scale *= 10 }
        let scaled = (abs(value) * scale).rounded()
        guard scaled < 9e18 else { return String(value) }
        let whole = UInt64(scaled)
        let sign = value < 0 && whole > 0 ? "-" : ""
        if digits == 0 { return sign + String(whole) }
        let divisor = UInt64(scale)
        var fraction = String(whole % divisor)
        fraction = String(repeating: "0", count: digits - fraction.count) + fraction
        return "\(sign)\(whole / divisor).\(fraction)"
    }

    static func quoted(_ text: String) -> String { JSONStringEncoder.quoted(text) }
}
