import CSystem

/// One client socket from accept to close, as a small state machine over four parts, each with one job:
/// `HTTPExchange` (the request head and body, and one answer), `WebSocketSession` (frames in, liveness),
/// `Subscriber` (the outbound queue and the backpressure rule; what the hub delivers to) and `Transport`
/// (plain or TLS bytes on the socket). The connection owns the phase, the close handshake, the timers and the
/// socket's epoll interest. Lives on one loop and is touched by that loop's thread only.
public final class Connection: EventHandler {
    enum Phase {
        /// The HTTP phase: reading the request, or waiting for the application's answer to it.
        case handshake
        case open
        /// A close frame or an HTTP answer is queued: once written, the write side is shut and input is
        /// discarded until the peer's FIN or `closeTimeout`.
        case closing
        case closed
    }

    // Stored properties are laid out in declaration order: what a flush touches comes first, together.
    public let fd: Int32
    private(set) var phase = Phase.handshake
    private var writeShut = false
    /// Holds one of the `MAX_PENDING_HANDSHAKES` places, taken at accept, until the upgrade or the close.
    private var holdsPendingPlace = true
    private var interest: UInt32 = 0
    // unowned(unsafe): the loop and its services outlive every connection on them, and a checked unowned
    // reference costs an atomic retain/release on every access of the hot path.
    public unowned(unsafe) let loop: EventLoop
    unowned(unsafe) let services: LoopServices
    /// The outbound queue, its dirty mark and the backpressure rule; what the hub delivers to.
    public let subscriber: Subscriber
    /// Internal, not private, like `exchange`: the extensions in Connection+*.swift use it.
    let transport: Transport

    public let handlerID: UInt64
    var exchange: HTTPExchange
    private var session: WebSocketSession

    let startedAt: UInt64
    private var closingSince: UInt64 = 0
    /// The earliest deadline with an entry in the loop's timer heap (0: none).
    private var scheduledDeadline: UInt64 = 0

    /// Set by the application (e.g. the pub/sub session); the engine never looks at it.
    public var userData: AnyObject?
    /// When set (monotonic ms), the open connection is closed with 4001 "token expired" at that moment.
    /// A later or no expiry leaves the earlier timer entry to fire for nothing and reschedule.
    public var expiresAt: UInt64? {
        // Not `ensureScheduled()`: a token refresh sets this from inside the WebSocket session's read, and
        // `deadline` reads that session.
        didSet { if let expiresAt { schedule(at: expiresAt) } }
    }

    init(fd: Int32, loop: EventLoop, services: LoopServices, tls: TLSStream? = nil) {
        handlerID = HandlerIDs.make()
        self.fd = fd
        self.loop = loop
        self.services = services
        let config = services.configuration
        transport =
            if let tls {
                .tls(TLSTransport(stream: tls, fd: fd, services: services, connectionID: handlerID))
            } else {
                .plain(PlainTransport(fd: fd, loop: loop))
            }
        exchange = HTTPExchange(maxHeadSize: config.maxHeadSize)
        session = WebSocketSession(maxMessageSize: config.maxMessageSize, now: loop.now)
        startedAt = loop.now
        subscriber = Subscriber(loop: loop, maxBackpressure: config.maxBackpressure)
        subscriber.attach(to: self)
    }

    func start() throws(Errno) {
        interest = UInt32(CSystem_EPOLLIN)
        try loop.register(fd: fd, handler: self, events: interest)
        ensureScheduled()
    }

    public var isOpen: Bool { phase == .open }

    /// The window bits this connection's messages are compressed with (permessage-deflate), 0 without it.
    public var deflateWindowBits: UInt8 { subscriber.windowBits }

    // MARK: Sending

    /// Starts the close handshake with `code`.
    public func close(_ code: CloseCode, reason: String = "") {
        close(code: code.rawValue, reason: reason)
    }

    /// Answers the peer's close frame with its own code, or an empty close to an empty one (RFC 6455 5.5.1).
    func closeEchoing(code: UInt16?) {
        close(code: code, reason: "")
    }

    /// permessage-deflate was negotiated: the peer's messages may be compressed.
    func enableInflate(contextTakeover: Bool) {
        session.enableDeflate(contextTakeover: contextTakeover)
    }

    private func close(code: UInt16?, reason: String) {
        guard phase == .open else { return }
        subscriber.enqueue(FrameWriter.closeFrame(code, reason: reason))
        beginClosing()
    }

    /// The HTTP phase is over with this answer (an error, or the application's response): it is sent, then the
    /// connection closes. A response to HEAD carries no body (RFC 9110 section 9.3.2).
    func answer(_ response: [UInt8], to head: RequestHead?) {
        let bytes = head?.method == "HEAD" ? HTTPResponse.withoutBody(response) : response
        subscriber.enqueue(SharedFrame.make(bytes: bytes))
        beginClosing()
    }

    /// The upgrade is accepted: `response` (the 101) goes out first, then the connection is open, compressing its
    /// messages with `windowBits` (0: none), and any `firstFrames` that came with the request are read.
    func open(response: SharedFrame, windowBits: UInt8, firstFrames: UnsafeMutableRawBufferPointer) {
        subscriber.enqueue(response)
        phase = .open
        exchange.end()
        subscriber.opened(windowBits: windowBits)
        releasePendingPlace()
        services.metrics.connectionsOpened.add(fromOwner: 1)
        services.application.opened(self)
        ensureScheduled()
        // A client may send its first frames in the same packet as the request.
        if phase == .open && !firstFrames.isEmpty { readFrames(firstFrames) }
    }

    private func beginClosing() {
        let wasOpen = phase == .open
        phase = .closing
        subscriber.stopAccepting()
        closingSince = loop.now
        exchange.end()
        ensureScheduled()
        if wasOpen { connectionEnded() }
    }

    /// The open phase is over: give back the connection's place and tell the application.
    private func connectionEnded() {
        services.connections.release()
        services.application.closed(self)
    }

    // MARK: EventHandler

    public func handleEvents(_ events: UInt32) {
        if events & UInt32(CSystem_EPOLLOUT) != 0 {
            flush()
        }
        if events & UInt32(CSystem_EPOLLIN | CSystem_EPOLLHUP | CSystem_EPOLLERR) != 0 && phase != .closed {
            readAvailable()
        }
    }

    public func flush() {
        subscriber.flushBegan()
        guard phase != .closed else { return }
        if subscriber.isOverflowed { closeSlowConsumer() }
        writeQueued()
        // What the socket did not take becomes the queue's own before the loop lets this tick's frames go.
        subscriber.flushEnded()
    }

    /// The one flush loop, plain and TLS alike: queued frames go to the transport until the queue is empty or the
    /// socket is full; a closing connection then ends its stream and shuts its write side. Every transport call on
    /// the common path (all written) is one that a plain connection needs: a switch on the transport each.
    @inline(__always)
    private func writeQueued() {
        let ready = transport.prepareOutput(resume: {
            // A TLS handshake, or an OpenSSL read, wanted to write: it continues here.
            readAvailable()
            return phase != .closed
        })
        guard proceed(ready) else { return }
        writing: while !subscriber.queue.isEmpty {
            let (count, bytes) = subscriber.queue.gather(into: loop.ioVectors, capacity: loop.ioVectorCapacity)
            switch transport.write(count: count, bytes: bytes) {
            case .wrote(let written):
                countWritten(written, messages: subscriber.queue.consume(written))
            case .blocked(let written, let recordsWaiting):
                let messages = subscriber.queue.consume(written)
                if recordsWaiting {
                    transport.countWhenWritten(messages: messages, bytes: written)
                } else {
                    countWritten(written, messages: messages)
                }
                updateInterest()
                return
            case .stopped:
                break writing
            case .failed:
                closeNow()
                return
            case .ended:
                endTransport()
                return
            }
        }
        if phase == .closing && !writeShut {
            guard proceed(transport.finishOutput()) else { return }
            writeShut = true
        }
        // Drained, so only input is wanted: usually that is the interest already, and nothing needs asking.
        if interest != UInt32(CSystem_EPOLLIN) || transport.wantsWritable { updateInterest() }
    }

    @inline(__always)
    private func countWritten(_ bytes: Int, messages: Int) {
        // Guaranteed: the services outlive their connections; a plain access would retain their metrics.
        Unmanaged.passUnretained(services)._withUnsafeGuaranteedRef {
            $0.metrics.bytesOut.add(fromOwner: UInt64(bytes))
            $0.metrics.messagesOut.add(fromOwner: UInt64(messages))
        }
    }

    /// Acts on a transport's readiness for output; true when writing goes on.
    @inline(__always)
    private func proceed(_ output: TransportOutput) -> Bool {
        switch output {
        case .ready: return true
        case .waiting: updateInterest()
        case .failed: closeNow()
        case .gone: break
        }
        return false
    }

    /// The transport cannot go on (TLS: the input was refused, the peer sent a fatal alert, a handshake failed, a
    /// key is used up): the alert that says why goes out, the write side is shut, and what the peer still sends is
    /// dropped until its FIN or `closeTimeout`. Closing the socket at once would let a peer that is still sending
    /// get a reset, which can destroy the alert before the peer reads it.
    private func endTransport() {
        transport.stopInput()
        subscriber.discardAll()
        if phase != .closing { beginClosing() }
        flush()
    }

    public func handleTimer(scheduled: UInt64) {
        if scheduled == scheduledDeadline { scheduledDeadline = 0 }
        let now = loop.now
        let config = services.configuration
        switch phase {
        case .handshake:
            if now >= startedAt + config.handshakeTimeout {
                services.logger.debug("handshake timeout", ["conn": String(handlerID)])
                services.metrics.handshakeFailed(.timeout)
                closeNow()
                return
            }
        case .open:
            if let expiresAt, now >= expiresAt {
                services.logger.debug("token expired", ["conn": String(handlerID)])
                close(.tokenExpired, reason: "token expired")
                return
            }
            switch session.checkLiveness(now: now, pingInterval: config.pingInterval, pongTimeout: config.pongTimeout) {
            case .quiet: break
            case .ping:
                subscriber.enqueue(FrameWriter.frame(.ping, payload: UnsafeRawBufferPointer(start: nil, count: 0)))
            case .unresponsive:
                services.logger.debug("pong timeout", ["conn": String(handlerID)])
                close(.goingAway, reason: "pong timeout")
                flush()
                closeNow()
                return
            }
        case .closing:
            if now >= closingSince + config.closeTimeout {
                closeNow()
                return
            }
        case .closed:
            return
        }
        ensureScheduled()
    }

    // MARK: Deadlines

    /// The one moment this connection next needs attention, given its phase (nil: none).
    private var deadline: UInt64? {
        let config = services.configuration
        switch phase {
        case .handshake: return startedAt + config.handshakeTimeout
        case .open:
            let liveness = session.livenessDeadline(pingInterval: config.pingInterval, pongTimeout: config.pongTimeout)
            guard let expiresAt else { return liveness }
            return min(expiresAt, liveness ?? expiresAt)
        case .closing: return closingSince + config.closeTimeout
        case .closed: return nil
        }
    }

    /// Makes sure a heap entry exists at or before `deadline`. Entries are never removed: a later one that
    /// fires for nothing is cheap, and reading never touches the heap (the idle check is lazy).
    private func ensureScheduled() {
        guard let deadline else { return }
        schedule(at: deadline)
    }

    private func schedule(at deadline: UInt64) {
        if scheduledDeadline == 0 || deadline < scheduledDeadline {
            scheduledDeadline = deadline
            loop.schedule(at: deadline, fd: fd, handler: self)
        }
    }

    // MARK: Reading

    private func readAvailable() {
        let outcome = transport.read(into: loop.readBuffer) { plaintext in
            handlePlaintext(plaintext)
            return phase != .closed
        }
        guard phase != .closed else { return }
        switch outcome {
        case .done: break
        case .waiting(let flush):
            if flush { subscriber.markDirty() }
            updateInterest()
        case .closed: closeNow()
        case .ended: endTransport()
        }
    }

    /// Plaintext from the peer, from the socket or from TLS.
    private func handlePlaintext(_ input: UnsafeMutableRawBufferPointer) {
        session.heard(at: loop.now)
        services.metrics.bytesIn.add(fromOwner: UInt64(input.count))
        switch phase {
        case .handshake: readHTTP(input)
        case .open: readFrames(input)
        case .closing, .closed: break
        }
    }

    private func readFrames(_ input: UnsafeMutableRawBufferPointer) {
        guard let error = session.read(input, into: self) else { return }
        services.logger.debug(
            "protocol error",
            ["conn": String(handlerID), "code": String(error.closeCode.rawValue), "reason": error.reason])
        close(code: error.closeCode.rawValue, reason: error.reason)
    }

    // MARK: Teardown

    /// Closes the socket at once (no handshake): the peer is gone, misbehaving, or out of time.
    func closeNow() {
        guard phase != .closed else { return }
        let wasOpen = phase == .open
        phase = .closed
        subscriber.stopAccepting()
        releasePendingPlace()
        loop.deregister(fd: fd)
        Socket.close(fd)
        subscriber.discardAll()
        transport.closed()
        if services.logger.enabled(.debug) {
            services.logger.debug(
                "connection closed",
                [
                    "conn": String(handlerID), "ms": String(loop.now - startedAt),
                    "deflate": subscriber.windowBits == 0 ? "off" : "on",
                    "compressed_in": String(session.compressedMessages),
                    "compressed_out": String(subscriber.compressedSent),
                ])
        }
        services.connectionClosed()
        if wasOpen { connectionEnded() }
    }

    private func releasePendingPlace() {
        guard holdsPendingPlace else { return }
        holdsPendingPlace = false
        services.pendingHandshakes.release()
    }

    private func updateInterest() {
        var wanted = UInt32(CSystem_EPOLLIN)
        if transport.wantsWritable { wanted |= UInt32(CSystem_EPOLLOUT) }
        if !subscriber.queue.isEmpty {
            wanted |= UInt32(CSystem_EPOLLOUT)
            // An echo-style peer that does not read its answers stops being read from, so its
            // queue cannot grow without bound.
            if subscriber.queue.queuedBytes >= services.configuration.maxBackpressure {
                wanted &= ~UInt32(CSystem_EPOLLIN)
            }
        }
        if wanted != interest {
            interest = wanted
            loop.setInterest(fd: fd, events: wanted)
        }
    }
}
