import Synchronization

/// Every loop's counters summed at one moment, plus the server-wide figures: what `/metrics` shows. A plain
/// value, so rendering it is pure and testable.
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
    public var connectionsOpened: UInt64 = 0
    /// Indexed by `LoopMetrics.Rejection.rawValue` (and likewise below).
    public var rejections = Array(repeating: UInt64(0), count: LoopMetrics.Rejection.allCases.count)
    public var authFailures = Array(repeating: UInt64(0), count: LoopMetrics.AuthFailure.allCases.count)
    public var handshakeFailures = Array(repeating: UInt64(0), count: LoopMetrics.HandshakeFailure.allCases.count)
    public var publishes = Array(repeating: UInt64(0), count: LoopMetrics.Source.allCases.count)
    public var publishesDenied = Array(repeating: UInt64(0), count: LoopMetrics.Source.allCases.count)
    public var messagesIn: UInt64 = 0
    public var messagesOut: UInt64 = 0
    public var bytesIn: UInt64 = 0
    public var bytesOut: UInt64 = 0
    public var slowConsumerCloses: UInt64 = 0
    public var handOffDropped: UInt64 = 0
    public var compressionInput: UInt64 = 0
    public var compressionOutput: UInt64 = 0
    public var tlsHandshakes: UInt64 = 0
    public var tlsHandshakeFailures: UInt64 = 0
    /// Zero and false without a broker (`REDIS_URL` unset).
    public var brokerConfigured = false
    public var brokerConnected = false
    public var brokerShards = 0
    public var brokerConnectedShards = 0
    public var brokerPublished: UInt64 = 0
    public var brokerReceived: UInt64 = 0
    /// Indexed by `BrokerStatus.Drop.rawValue`.
    public var brokerDropped = Array(repeating: UInt64(0), count: BrokerStatus.Drop.allCases.count)
    public var brokerMalformed: UInt64 = 0
    public var brokerReconnects: UInt64 = 0
    public var loops: [Loop] = []
    public var process: ProcessStatistics?

    public init() {}

    /// Adds one loop's counters.
    mutating func add(_ metrics: LoopMetrics, events: UInt64, iterations: UInt64) {
        for index in rejections.indices { rejections[index] &+= metrics.rejections[index].load(ordering: .relaxed) }
        for index in authFailures.indices {
            authFailures[index] &+= metrics.authFailures[index].load(ordering: .relaxed)
        }
        for index in handshakeFailures.indices {
            handshakeFailures[index] &+= metrics.handshakeFailures[index].load(ordering: .relaxed)
        }
        for index in publishes.indices {
            publishes[index] &+= metrics.publishes[index].load(ordering: .relaxed)
            publishesDenied[index] &+= metrics.publishesDenied[index].load(ordering: .relaxed)
        }
        connectionsOpened &+= metrics.connectionsOpened.load(ordering: .relaxed)
        messagesIn &+= metrics.messagesIn.load(ordering: .relaxed)
        messagesOut &+= metrics.messagesOut.load(ordering: .relaxed)
        bytesIn &+= metrics.bytesIn.load(ordering: .relaxed)
        bytesOut &+= metrics.bytesOut.load(ordering: .relaxed)
        slowConsumerCloses &+= metrics.slowConsumerCloses.load(ordering: .relaxed)
        handOffDropped &+= metrics.handOffDropped.load(ordering: .relaxed)
        compressionInput &+= metrics.compressionInput.load(ordering: .relaxed)
        compressionOutput &+= metrics.compressionOutput.load(ordering: .relaxed)
        tlsHandshakes &+= metrics.tlsHandshakes.load(ordering: .relaxed)
        tlsHandshakeFailures &+= metrics.tlsHandshakeFailures.load(ordering: .relaxed)
        loops.append(Loop(events: events, iterations: iterations, sockets: metrics.sockets.load(ordering: .relaxed)))
    }

    mutating func add(_ broker: BrokerStatus) {
        brokerConfigured = true
        brokerConnected = broker.isConnected
        brokerShards = broker.shardCount
        brokerConnectedShards = broker.connectedShards.load(ordering: .relaxed)
        brokerPublished = broker.published.load(ordering: .relaxed)
        brokerReceived = broker.received.load(ordering: .relaxed)
        for reason in BrokerStatus.Drop.allCases {
            brokerDropped[reason.rawValue] = broker.dropped[reason.rawValue].load(ordering: .relaxed)
        }
        brokerMalformed = broker.malformed.load(ordering: .relaxed)
        brokerReconnects = broker.reconnects.load(ordering: .relaxed)
    }

    /// Uncompressed bytes per compressed byte over everything compressed so far (0 before anything was).
    public var compressionRatio: Double {
        compressionOutput == 0 ? 0 : Double(compressionInput) / Double(compressionOutput)
    }
}
