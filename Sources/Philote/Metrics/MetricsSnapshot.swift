/// Every loop's counters summed at one moment, plus the server-wide figures: what `/metrics` shows. A plain
/// value, so rendering it is pure and testable. Which counters there are, and how each is read, is
/// `MetricFamily.all`'s business: this type only sums and keeps them.
public struct MetricsSnapshot: Sendable, Equatable {
    /// One event loop's own figures (labelled by loop index).
    public struct Loop: Sendable, Equatable {
        /// Readiness events epoll reported to this loop.
        public var events: UInt64 = 0
        /// Returns from epoll_wait (wake-ups).
        public var iterations: UInt64 = 0
        public var sockets = 0

        public init(events: UInt64 = 0, iterations: UInt64 = 0, sockets: Int = 0) {
            self.events = events
            self.iterations = iterations
            self.sockets = sockets
        }
    }

    public var version = PhiloteVersion.string
    public var ready = true
    public var connections = 0
    public var maxConnections = 0
    /// The per-loop counters summed over the loops, and the broker's figures (absent without a broker): by
    /// family name, one value per label value in the family's order.
    public var counts: [String: [UInt64]] = [:]
    public var loops: [Loop] = []
    public var process: ProcessStatistics?
    /// Set with history on.
    public var history: HistoryFigures?

    public init() {}

    /// A family's value for the label value at `index` (0 for a family of one sample); 0 when not counted.
    public func count(_ family: String, label index: Int = 0) -> UInt64 {
        guard let values = counts[family], values.indices.contains(index) else { return 0 }
        return values[index]
    }

    /// Adds one loop's counters.
    mutating func add(_ metrics: LoopMetrics, events: UInt64, iterations: UInt64) {
        for family in MetricFamily.all {
            guard case .summedOverLoops(let labels, let read) = family.source else { continue }
            var sums = counts[family.name] ?? Array(repeating: 0, count: labels.values.count)
            for index in sums.indices { sums[index] &+= read(metrics, index) }
            counts[family.name] = sums
        }
        loops.append(Loop(events: events, iterations: iterations, sockets: metrics.sockets.relaxedValue))
    }

    /// Reads the broker's figures.
    mutating func add(_ broker: BrokerStatus) {
        for family in MetricFamily.all {
            guard case .readFromBroker(let labels, let read) = family.source else { continue }
            counts[family.name] = labels.values.indices.map { read(broker, $0) }
        }
    }

    /// Uncompressed bytes per compressed byte over everything compressed so far (0 before anything was).
    public var compressionRatio: Double {
        let input = count(MetricFamily.compressionInputName)
        let output = count(MetricFamily.compressionOutputName)
        return output == 0 ? 0 : Double(input) / Double(output)
    }
}
