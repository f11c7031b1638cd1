import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// The composition root: `workers` loops, each with its own listening socket and connections, running
/// `application` on every connection.
public final class Server: @unchecked Sendable {
    public let configuration: Configuration
    public let logger: Logger
    private let group: LoopGroup
    private var perLoop: [LoopServices] = []
    private var listeners: [Listener] = []
    /// The bound port (differs from the configured one when that was 0).
    public private(set) var port = 0
    /// Open WebSocket connections, limited by `MAX_CONNECTIONS`.
    public let connections: ConnectionCounter
    /// Sockets accepted but not upgraded yet, limited by `MAX_PENDING_HANDSHAKES`.
    public let pendingHandshakes: ConnectionCounter
    /// Set first thing on shutdown, so readiness fails before any client is told to go.
    private let drainingFlag = Atomic<Bool>(false)
    private let startedAtWallClock = ProcessStatistics.wallClockSeconds()

    /// Set when the port serves wss://; `reloadTLS` replaces its services.
    public let tls: TLSContextStore?

    public init(configuration: Configuration, application: WebSocketApplication, tls: TLSContextStore? = nil)
        throws(Errno)
    {
        self.tls = tls
        self.configuration = configuration
        logger = Logger(level: configuration.logLevel, format: configuration.logFormat)
        group = try LoopGroup(count: configuration.workers)
        connections = ConnectionCounter(limit: configuration.maxConnections)
        pendingHandshakes = ConnectionCounter(limit: configuration.maxPendingHandshakes)
        guard let address = SocketAddress(host: configuration.host, port: configuration.port) else {
            throw Errno(code: EINVAL, call: "address")
        }
        var bindAddress = address
        do {
            for loop in group.loops {
                let services = LoopServices(
                    configuration: configuration, logger: logger, application: application, loop: loop,
                    connections: connections, pendingHandshakes: pendingHandshakes, tls: tls)
                let fd = try Socket.listen(on: bindAddress)
                if port == 0 {
                    // With PORT=0 the first socket picks a port; the others join it.
                    port = Socket.localPort(fd)
                    bindAddress = SocketAddress(host: configuration.host, port: port)!
                }
                let listener = Listener(fd: fd, services: services)
                try listener.start()
                perLoop.append(services)
                listeners.append(listener)
            }
        } catch {
            for listener in listeners { listener.close() }
            throw error
        }
    }

    public var loops: [EventLoop] { group.loops }

    /// Each loop's counters, in loop order (`perLoop` is fixed once `init` returns).
    var loopMetrics: [LoopMetrics] { perLoop.map(\.metrics) }

    /// Shutdown has begun: `/readyz` fails and new WebSocket clients get 503.
    public var isDraining: Bool { drainingFlag.load(ordering: .acquiring) }

    /// What `/readyz` reports: accepting, not draining, and the broker (when configured) connected.
    public var isReady: Bool { !isDraining && brokerStatus?.isConnected != false }

    /// Set by an application that shares its hub through a broker (before `start`).
    public internal(set) var brokerStatus: BrokerStatus?
    /// Set by the application with history on: what the stores hold and how recoveries went, read at each scrape.
    var historyFigures: (@Sendable () -> HistoryFigures)?

    /// Each loop's shared state, in loop order.
    var loopServices: [LoopServices] { perLoop }

    /// Every loop's counters summed now, with the server-wide figures. Safe from any thread.
    public func metricsSnapshot() -> MetricsSnapshot {
        var snapshot = MetricsSnapshot()
        snapshot.ready = isReady
        snapshot.connections = connections.current
        snapshot.maxConnections = connections.limit
        if let broker = brokerStatus { snapshot.add(broker) }
        snapshot.history = historyFigures?()
        for services in perLoop {
            snapshot.add(
                services.metrics, events: services.loop.eventsHandled.load(ordering: .relaxed),
                iterations: services.loop.wakeups.load(ordering: .relaxed))
        }
        snapshot.process = ProcessStatistics.current(startTimeSeconds: startedAtWallClock)
        return snapshot
    }

    /// Starts the loop threads; returns at once.
    public func start() {
        group.start()
    }

    /// Drains: readiness fails first, then every open connection gets close 1001, and each loop stops once
    /// its connections are gone or `gracePeriod` ms have passed. Until its loop stops, a listener stays
    /// open so that probes and scrapes still get answers (503 from `/readyz`); new WebSocket clients get
    /// 503. Safe from any thread; `wait` joins.
    public func shutdown(gracePeriod: UInt64 = 2000) {
        drainingFlag.store(true, ordering: .releasing)
        for (services, listener) in zip(perLoop, listeners) {
            services.loop.execute { [services, listener] in
                services.draining = true
                let loop = services.loop
                // Requests still in their handshake are left to finish: a probe gets its answer, an upgrade
                // its 503. `finish` drops whatever remains.
                let connections = loop.registeredHandlers.compactMap { $0 as? Connection }
                for connection in connections where connection.isOpen {
                    connection.close(.goingAway, reason: "server shutting down")
                }
                let finish = {
                    services.onIdle = nil
                    listener.close()
                    for case let connection as Connection in loop.registeredHandlers { connection.closeNow() }
                    loop.stop()
                }
                if services.connectionCount == 0 {
                    finish()
                } else {
                    services.onIdle = finish
                    loop.schedule(at: loop.now + gracePeriod, task: finish)
                }
            }
        }
    }

    public func wait() {
        group.join()
    }
}
