#if canImport(Glibc)
    import Glibc
#endif

/// The composition root: `workers` loops, each with its own listening socket and connections, running
/// `application` on every connection.
public final class Server: @unchecked Sendable {
    public let configuration: Configuration
    public let logger: Logger
    private let group: LoopGroup
    private var contexts: [LoopContext] = []
    private var listeners: [Listener] = []
    /// The bound port (differs from the configured one when that was 0).
    public private(set) var port = 0
    /// Open WebSocket connections, limited by `MAX_CONNECTIONS`.
    public let connections: ConnectionCounter

    /// Set when the port serves wss://; `reloadTLS` replaces its context.
    public let tls: TLSContextStore?

    public init(configuration: Configuration, application: WebSocketApplication, tls: TLSContextStore? = nil)
        throws(Errno)
    {
        self.tls = tls
        self.configuration = configuration
        logger = Logger(level: configuration.logLevel)
        group = try LoopGroup(count: configuration.workers)
        connections = ConnectionCounter(limit: configuration.maxConnections)
        guard let address = SocketAddress(host: configuration.host, port: configuration.port) else {
            throw Errno(code: EINVAL, call: "address")
        }
        var bindAddress = address
        do {
            for loop in group.loops {
                let context = LoopContext(
                    configuration: configuration, logger: logger, application: application, loop: loop,
                    connections: connections, tls: tls)
                let fd = try Socket.listen(on: bindAddress)
                if port == 0 {
                    // With PORT=0 the first socket picks a port; the others join it.
                    port = Socket.localPort(fd)
                    bindAddress = SocketAddress(host: configuration.host, port: port)!
                }
                let listener = Listener(fd: fd, context: context)
                try listener.start()
                contexts.append(context)
                listeners.append(listener)
            }
        } catch {
            for listener in listeners { listener.close() }
            throw error
        }
    }

    public var loops: [EventLoop] { group.loops }

    /// Starts the loop threads; returns at once.
    public func start() {
        group.start()
    }

    /// Stops accepting, sends close 1001 to every open connection, and stops each loop once its
    /// connections are gone or `gracePeriod` ms have passed. Safe from any thread; `wait` joins.
    public func shutdown(gracePeriod: UInt64 = 2000) {
        for (context, listener) in zip(contexts, listeners) {
            context.loop.execute { [context, listener] in
                listener.close()
                let loop = context.loop
                let connections = loop.registeredHandlers.compactMap { $0 as? Connection }
                for connection in connections {
                    if connection.isOpen {
                        connection.close(.goingAway, reason: "server shutting down")
                    } else {
                        connection.closeNow()
                    }
                }
                let finish = {
                    context.onIdle = nil
                    for case let connection as Connection in loop.registeredHandlers { connection.closeNow() }
                    loop.stop()
                }
                if context.connectionCount == 0 {
                    finish()
                } else {
                    context.onIdle = finish
                    loop.schedule(at: loop.now + gracePeriod, task: finish)
                }
            }
        }
    }

    public func wait() {
        group.join()
    }
}
