/// The services one loop gives every connection on it: configuration, logger, application, counters, the
/// loop's compressors and TLS ciphers, and its own bookkeeping. (Not a TLS or OpenSSL context: those are
/// `TLSContext`.) Touched only by that loop's thread, except the connection count, which is read anywhere.
final class LoopServices: @unchecked Sendable {
    let configuration: Configuration
    let logger: Logger
    let application: WebSocketApplication
    let loop: EventLoop
    let connections: ConnectionCounter
    /// Sockets accepted but not upgraded, all loops (`MAX_PENDING_HANDSHAKES`).
    let pendingHandshakes: ConnectionCounter
    /// Set when the port serves wss:// only.
    let tls: TLSContextStore?
    private(set) var connectionCount = 0
    /// Called when the last connection of a draining loop is gone.
    var onIdle: (() -> Void)?
    /// Set when shutdown begins: new upgrades get 503 while plain requests (health, metrics) are still
    /// answered until the loop stops.
    var draining = false
    /// This loop's counters for `/metrics`.
    let metrics = LoopMetrics()

    init(
        configuration: Configuration, logger: Logger, application: WebSocketApplication, loop: EventLoop,
        connections: ConnectionCounter, pendingHandshakes: ConnectionCounter, tls: TLSContextStore?
    ) {
        self.connections = connections
        self.pendingHandshakes = pendingHandshakes
        self.tls = tls
        self.configuration = configuration
        self.logger = logger
        self.application = application
        self.loop = loop
    }

    /// This loop's compressors, one per window size in use, made on first use (each holds about 256 KiB
    /// of zlib state, so never one per connection).
    private var deflaters: [Deflater?] = Array(repeating: nil, count: 16)

    func deflater(windowBits: Int) -> Deflater {
        if let existing = deflaters[windowBits] { return existing }
        let made = Deflater(windowBits: windowBits)
        deflaters[windowBits] = made
        return made
    }

    /// This loop's TLS record ciphers and sealing buffer, made with the first TLS connection.
    private(set) lazy var tlsCiphers = TLSCiphers(plaintextCapacity: loop.writeBuffer.count)
    /// This loop's TLS connections that hold a keyed sealing context.
    private(set) lazy var tlsSealing = TLSSealingSweep(loop: loop)

    func connectionOpened() {
        connectionCount += 1
        metrics.sockets.add(fromOwner: 1)
    }

    func connectionClosed() {
        connectionCount -= 1
        metrics.sockets.add(fromOwner: -1)
        if connectionCount == 0, let onIdle { onIdle() }
    }
}
