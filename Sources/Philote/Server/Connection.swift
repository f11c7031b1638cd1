import CSystem

#if canImport(Glibc)
    import Glibc
#endif

/// One client socket from accept to close: the HTTP upgrade, then RFC 6455 framing, the close handshake,
/// idle pings and timeouts. Lives on one loop and is touched by that loop's thread only.
public final class Connection: EventHandler {
    enum Phase {
        /// Reading the HTTP request head.
        case handshake
        case open
        /// A close frame or an HTTP error is queued: once written, the write side is shut and input is
        /// discarded until the peer's FIN or `closeTimeout`.
        case closing
        case closed
    }

    // Stored properties are laid out in declaration order: what a delivery and a flush touch comes first,
    // together, so that with 10,000 subscribers each costs as few cache lines (and misses) as possible.
    public let fd: Int32
    private(set) var phase = Phase.handshake
    private var writeShut = false
    /// Holds one of the `MAX_PENDING_HANDSHAKES` places, taken at accept, until the upgrade or the close.
    private var holdsPendingPlace = true
    private var interest: UInt32 = 0
    // unowned(unsafe): the loop and its context outlive every connection on them, and a checked unowned
    // reference costs an atomic retain/release on every access of the hot path.
    public unowned(unsafe) let loop: EventLoop
    unowned(unsafe) let context: LoopContext
    /// Set when the port serves wss://: all bytes go through it.
    private let tls: TLSSession?
    /// The outbound queue, its dirty mark and the backpressure rule; what the hub delivers to.
    public let subscriber: Subscriber

    public let handlerID: UInt64
    private var headParser: RequestHeadParser?
    /// The body of a plain HTTP request being collected (`POST /api/publish`); nil otherwise.
    private var bodyReader: RequestBodyReader?
    private var reader: WebSocketReader
    /// Bytes of an incomplete frame, held between reads; empty (no storage) otherwise.
    private var pending: [UInt8] = []

    private let startedAt: UInt64
    private var lastRead: UInt64
    private var pingSentAt: UInt64 = 0
    private var awaitingPong = false
    private var closingSince: UInt64 = 0
    /// The earliest deadline with an entry in the loop's timer heap (0: none).
    private var scheduledDeadline: UInt64 = 0

    /// Set by the application (e.g. the pub/sub session); the engine never looks at it.
    public var userData: AnyObject?
    /// When set (monotonic ms), the open connection is closed with 4001 "token expired" at that moment.
    public var expiresAt: UInt64? {
        didSet { ensureScheduled() }
    }

    init(fd: Int32, loop: EventLoop, context: LoopContext, tls: TLSSession? = nil) {
        self.tls = tls
        handlerID = HandlerIDs.make()
        self.fd = fd
        self.loop = loop
        self.context = context
        let config = context.configuration
        headParser = RequestHeadParser(maxHeadSize: config.maxHeadSize)
        reader = WebSocketReader(maxMessageSize: config.maxMessageSize)
        startedAt = loop.now
        lastRead = loop.now
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

    /// A slow consumer (see Subscriber), closed here, in the flush after the delivery that found it: its queue is
    /// freed at once, so it never holds memory or slows anyone else.
    @inline(never)
    private func closeSlowConsumer() {
        subscriber.overflowHandled()
        guard phase == .open else { return }
        context.logger.debug("slow consumer", ["conn": String(handlerID)])
        context.metrics.slowConsumerCloses.add(fromOwner: 1)
        subscriber.queue.dropUnsent(keeping: tls?.committedPlaintext ?? 0)
        close(.policyViolation, reason: "slow consumer")
    }

    /// Queues a reply to what this peer sent (echo, error replies). Here not reading is the backpressure:
    /// above `MAX_BACKPRESSURE` unsent bytes the server stops reading from the peer until it catches up.
    public func send(_ opcode: Opcode, _ payload: UnsafeRawBufferPointer) {
        guard phase == .open else { return }
        let windowBits = subscriber.windowBits
        if windowBits != 0 && payload.count >= context.configuration.compressionMinSize {
            let compressed = context.deflater(windowBits: Int(windowBits)).compress(payload)
            // Incompressible data goes out as it is: RFC 7692 lets every message choose.
            if compressed.count < payload.count {
                context.metrics.compressed(from: payload.count, to: compressed.count)
                subscriber.enqueue(
                    compressed.withUnsafeBytes { FrameWriter.frame(opcode, payload: $0, rsv: FrameHeader.rsv1) },
                    compressed: true)
                return
            }
        }
        enqueue(FrameWriter.frame(opcode, payload: payload))
    }

    /// Starts the close handshake with `code`.
    public func close(_ code: CloseCode, reason: String = "") {
        close(code: code.rawValue, reason: reason)
    }

    private func close(code: UInt16?, reason: String) {
        guard phase == .open else { return }
        enqueue(FrameWriter.closeFrame(code, reason: reason))
        beginClosing()
    }

    /// Queues a frame made for this connection alone (a reply, a control frame, the handshake answer).
    private func enqueue(_ frame: SharedFrame) {
        subscriber.enqueue(frame)
    }

    private func beginClosing() {
        let wasOpen = phase == .open
        phase = .closing
        subscriber.stopAccepting()
        closingSince = loop.now
        headParser = nil
        ensureScheduled()
        if wasOpen { connectionEnded() }
    }

    /// The open phase is over: give back the connection's place and tell the application.
    private func connectionEnded() {
        context.connections.release()
        context.application.closed(self)
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

    /// Queued frames from which a flush copies instead of handing the kernel an iovec per frame.
    static let gatherCopyThreshold = 32

    public func flush() {
        subscriber.flushBegan()
        guard phase != .closed else { return }
        if subscriber.isOverflowed { closeSlowConsumer() }
        if tls != nil {
            flushTLS()
        } else {
            flushPlain()
        }
        // What the socket did not take outlives the loop's hold on this tick's frames.
        subscriber.flushEnded()
    }

    @inline(__always)
    private func flushPlain() {
        while !subscriber.queue.isEmpty {
            let (count, bytes) = subscriber.queue.gather(into: loop.ioVectors, capacity: loop.ioVectorCapacity)
            do {
                let result: IOResult<Int>
                if count >= Self.gatherCopyThreshold && bytes <= loop.writeBuffer.count {
                    // Many small frames: one copy into the loop's write buffer and a plain write costs
                    // the kernel less than walking dozens of iovecs.
                    loop.gatherCopy(count: count)
                    result = try Socket.write(fd, UnsafeRawBufferPointer(rebasing: loop.writeBuffer[..<bytes]))
                } else {
                    result = try Socket.writev(fd, loop.ioVectors, count: Int32(count))
                }
                switch result {
                case .processed(let written):
                    let messages = subscriber.queue.consume(written)
                    // Guaranteed: the context outlives its connections; a plain access would retain its
                    // metrics object around the addition.
                    Unmanaged.passUnretained(context)._withUnsafeGuaranteedRef {
                        $0.metrics.bytesOut.add(fromOwner: UInt64(written))
                        $0.metrics.messagesOut.add(fromOwner: UInt64(messages))
                    }
                    if written < bytes {
                        updateInterest()
                        return
                    }
                case .wouldBlock:
                    updateInterest()
                    return
                }
            } catch {
                // EPIPE / ECONNRESET: the peer is gone; nothing more can be delivered.
                closeNow()
                return
            }
        }
        if phase == .closing && !writeShut {
            writeShut = true
            Socket.shutdownWrite(fd)
        }
        // Drained, so only input is wanted: usually that is the interest already, and nothing needs asking.
        if interest != UInt32(CSystem_EPOLLIN) { updateInterest() }
    }

    /// TLS: everything queued is copied into the loop's buffer (64 KiB of plaintext at a time), sealed into records
    /// and written with one `write` per connection per tick. Records the socket does not take stay in the session
    /// (they are sealed, their sequence numbers spent) and go first next time.
    private func flushTLS() {
        guard let tls else { return }
        if tls.wantsWrite && !tls.discardsInput {
            // The handshake, or an OpenSSL read, wanted to write: it continues here.
            readTLS()
            guard phase != .closed else { return }
        }
        guard tls.handshakeComplete || tls.discardsInput else {
            updateInterest()  // output waits for the handshake
            return
        }
        guard writeUnsent(tls) else { return }
        let ciphers = context.tlsCiphers
        while !subscriber.queue.isEmpty && !tls.discardsInput {
            let (count, bytes) = subscriber.queue.gather(into: loop.ioVectors, capacity: loop.ioVectorCapacity)
            let length = min(bytes, loop.writeBuffer.count)
            loop.gatherCopy(count: count, limit: length)
            let sent: (consumed: Int, blocked: Bool)?
            do {
                sent = try tls.send(
                    UnsafeRawBufferPointer(rebasing: loop.writeBuffer[..<length]), fd: fd, ciphers: ciphers,
                    now: loop.now, sealing: context.tlsSealing)
            } catch {
                closeNow()
                return
            }
            guard let sent else {
                context.logger.debug("TLS output ended", ["conn": String(handlerID)])
                endTLS(tls)
                return
            }
            let messages = subscriber.queue.consume(sent.consumed)
            if sent.blocked {
                // Some of these records wait in the session: they count once they are written.
                tls.awaitUnsent(messages: messages, bytes: sent.consumed)
                updateInterest()
                return
            }
            context.metrics.bytesOut.add(fromOwner: UInt64(sent.consumed))
            context.metrics.messagesOut.add(fromOwner: UInt64(messages))
        }
        if phase == .closing && !writeShut {
            tls.closeNotify(ciphers: ciphers)
            guard writeUnsent(tls) else { return }
            writeShut = true
            Socket.shutdownWrite(fd)
        }
        updateInterest()
    }

    /// Writes the records the socket did not take earlier (or an alert or KeyUpdate); false when some are still
    /// waiting (interest updated) or the connection is gone.
    private func writeUnsent(_ tls: TLSSession) -> Bool {
        do {
            if try tls.writeUnsent(fd) {
                let (messages, bytes) = tls.takeWrittenUnsent()
                context.metrics.bytesOut.add(fromOwner: UInt64(bytes))
                context.metrics.messagesOut.add(fromOwner: UInt64(messages))
                return true
            }
        } catch {
            closeNow()
            return false
        }
        updateInterest()
        return false
    }

    /// TLS cannot go on (the input was refused, the peer sent a fatal alert, a handshake failed, a key is used up):
    /// the alert that says why goes out, the write side is shut, and what the peer still sends is dropped until
    /// its FIN or `closeTimeout`. Closing the socket at once would let a peer that is still sending get a reset,
    /// which can destroy the alert before the peer reads it.
    private func endTLS(_ tls: TLSSession) {
        tls.discardsInput = true
        subscriber.discardAll()
        if phase != .closing { beginClosing() }
        flush()
    }

    public func handleTimer(scheduled: UInt64) {
        if scheduled == scheduledDeadline { scheduledDeadline = 0 }
        guard phase != .closed else { return }
        let now = loop.now
        switch phase {
        case .handshake:
            if now >= startedAt + context.configuration.handshakeTimeout {
                context.logger.debug("handshake timeout", ["conn": String(handlerID)])
                context.metrics.handshakeFailed(.timeout)
                closeNow()
                return
            }
        case .open:
            let config = context.configuration
            if let expiresAt, now >= expiresAt {
                context.logger.debug("token expired", ["conn": String(handlerID)])
                close(.tokenExpired, reason: "token expired")
                return
            }
            if config.pingInterval > 0 {
                if awaitingPong {
                    if now >= pingSentAt + config.pongTimeout {
                        context.logger.debug("pong timeout", ["conn": String(handlerID)])
                        close(.goingAway, reason: "pong timeout")
                        flush()
                        closeNow()
                        return
                    }
                } else if now >= lastRead + config.pingInterval {
                    awaitingPong = true
                    pingSentAt = now
                    enqueue(FrameWriter.frame(.ping, payload: UnsafeRawBufferPointer(start: nil, count: 0)))
                }
            }
        case .closing:
            if now >= closingSince + context.configuration.closeTimeout {
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
        let config = context.configuration
        switch phase {
        case .handshake: return startedAt + config.handshakeTimeout
        case .open:
            var next = expiresAt
            if config.pingInterval > 0 {
                let idle = awaitingPong ? pingSentAt + config.pongTimeout : lastRead + config.pingInterval
                next = min(next ?? idle, idle)
            }
            return next
        case .closing: return closingSince + config.closeTimeout
        case .closed: return nil
        }
    }

    /// Makes sure a heap entry exists at or before `deadline`. Entries are never removed: a later one that
    /// fires for nothing is cheap, and reading never touches the heap (the idle check is lazy).
    private func ensureScheduled() {
        guard let deadline else { return }
        if scheduledDeadline == 0 || deadline < scheduledDeadline {
            scheduledDeadline = deadline
            loop.schedule(at: deadline, fd: fd, handler: self)
        }
    }

    // MARK: Reading

    private func readAvailable() {
        if tls != nil {
            readTLS()
            return
        }
        let buffer = loop.readBuffer
        guard let count = readSocket(into: buffer) else { return }
        received(UnsafeMutableRawBufferPointer(rebasing: buffer[..<count]))
    }

    /// One read from the socket: the number of bytes, or nil when there is nothing to read or the connection
    /// has ended (closed here: a read error, or the peer's FIN, which without a close frame, or over TLS a
    /// close_notify, is an abnormal closure or a truncated stream).
    @inline(__always)
    private func readSocket(into buffer: UnsafeMutableRawBufferPointer) -> Int? {
        do {
            switch try Socket.read(fd, into: buffer) {
            case .wouldBlock: return nil
            case .processed(let read) where read > 0: return read
            case .processed: break
            }
        } catch {}
        closeNow()
        return nil
    }

    /// Plaintext from the peer, from the socket or from TLS.
    private func received(_ input: UnsafeMutableRawBufferPointer) {
        lastRead = loop.now
        awaitingPong = false
        context.metrics.bytesIn.add(fromOwner: UInt64(input.count))
        switch phase {
        case .handshake: readHandshake(input)
        case .open: readFrames(input)
        case .closing, .closed: break
        }
    }

    /// TLS: finish the handshake, then read records: one read per readiness event, as for plain connections, since
    /// nothing decrypted waits anywhere but in the socket (an incomplete record is kept by the session; OpenSSL, when
    /// it keeps the connection, is read until it wants more).
    private func readTLS() {
        guard let tls else { return }
        let buffer = loop.readBuffer
        if tls.discardsInput {
            _ = readSocket(into: buffer)  // dropped; the peer's FIN closes
            return
        }
        if !tls.handshakeComplete {
            switch tls.handshake() {
            case .done:
                context.metrics.tlsHandshakes.add(fromOwner: 1)
            case .wantRead, .wantWrite:
                updateInterest()
                return
            case .failed:
                context.metrics.tlsHandshakeFailures.add(fromOwner: 1)
                context.logger.debug("TLS handshake failed", ["conn": String(handlerID)])
                endTLS(tls)  // OpenSSL has written its alert, if it had one to send
                return
            }
        }
        let end: TLSSession.ReadEnd
        if tls.readsThroughOpenSSL {
            end = tls.readThroughOpenSSL(into: buffer) { plaintext in
                received(plaintext)
                return phase != .closed
            }
        } else {
            let held = tls.partialRecord.count
            guard let count = readSocket(into: UnsafeMutableRawBufferPointer(rebasing: buffer[held...])) else {
                if phase != .closed { updateInterest() }
                return
            }
            if held > 0 {
                buffer.copyBytes(from: tls.partialRecord)
                tls.partialRecord = []
            }
            end = tls.openRecords(buffer, end: held + count, ciphers: context.tlsCiphers) { plaintext in
                received(plaintext)
                return phase != .closed
            }
        }
        guard phase != .closed else { return }
        switch end {
        case .wouldBlock:
            // A peer that keeps asking for KeyUpdates without reading the answers must not grow them unbounded.
            if tls.unsentCount > context.configuration.maxBackpressure {
                closeNow()
                return
            }
            if tls.unsentCount > 0 { subscriber.markDirty() }
            updateInterest()
        case .closeNotify:
            // The peer's close_notify is answered with ours (RFC 8446 section 6.1) before the socket goes.
            tls.closeNotify(ciphers: context.tlsCiphers)
            _ = try? tls.writeUnsent(fd)
            closeNow()
        case .failed:
            context.logger.debug("TLS record refused", ["conn": String(handlerID)])
            endTLS(tls)
        }
    }

    private func readHandshake(_ input: UnsafeMutableRawBufferPointer) {
        if let bodyReader {
            bodyReader.feed(UnsafeRawBufferPointer(input))
            if bodyReader.isComplete {
                self.bodyReader = nil
                serve(bodyReader.head, body: bodyReader.body)
            }
            return
        }
        guard var parser = headParser else { return }
        // Moved out while it grows, so the buffer inside is never shared (and never copied on write).
        headParser = nil
        let result = parser.feed(UnsafeRawBufferPointer(input))
        switch result {
        case .needMore:
            headParser = parser
        case .failure(let error):
            context.metrics.handshakeFailed(.init(status: error.status))
            reject(error)
        case .complete(let head, let consumed):
            if !head.tokens("Upgrade").contains(where: { $0.asciiCaseInsensitiveEquals("websocket") }) {
                // A plain HTTP request (the API, health, metrics), with its body if it announces one.
                readRequest(head, rest: UnsafeRawBufferPointer(rebasing: input[consumed...]))
                return
            }
            upgrade(head)
            if phase == .open && consumed < input.count {
                // A client may send its first frame in the same packet as the request.
                readFrames(UnsafeMutableRawBufferPointer(rebasing: input[consumed...]))
            }
        }
    }

    /// Largest body a plain HTTP request may carry: a list of messages for `POST /api/publish`, and at
    /// least one message of MAX_MESSAGE_SIZE.
    static func requestBodyLimit(_ configuration: Configuration) -> Int { max(configuration.maxMessageSize, 1 << 20) }

    /// Collects the announced body (bounded; the handshake timeout covers it too), then serves the request.
    private func readRequest(_ head: RequestHead, rest: UnsafeRawBufferPointer) {
        switch RequestBodyReader.announcedLength(of: head, limit: Self.requestBodyLimit(context.configuration)) {
        case .failure(let error):
            context.metrics.handshakeFailed(.init(status: error.status))
            reject(error, head: head)
        case .success(0):
            serve(head, body: [])
        case .success where !context.application.readsBody(of: head, connection: self):
            // Answered from the head (a publish without a valid token, say): the body is never buffered, and what
            // arrives of it is dropped while the connection closes.
            serve(head, body: [])
        case .success(let length):
            let collector = RequestBodyReader(head: head, expectedLength: length)
            collector.feed(rest)
            if collector.isComplete {
                serve(head, body: collector.body)
            } else {
                bodyReader = collector
            }
        }
    }

    /// A plain HTTP request the application may serve (answered, then closed); if it does not, the engine
    /// answers it as the failed upgrade it then is.
    private func serve(_ head: RequestHead, body: [UInt8]) {
        switch context.application.respond(to: head, body: body, connection: self) {
        case .response(let response): respond(response, to: head)
        case .later: break
        case nil: upgrade(head)
        }
    }

    /// The answer to a plain request that the application deferred (`HTTPAnswer.later`); ignored if the
    /// connection has gone meanwhile. Call on the connection's loop.
    public func sendHTTPResponse(_ response: [UInt8]) {
        guard phase == .handshake, headParser == nil, bodyReader == nil else { return }
        respond(response, to: nil)
    }

    private func upgrade(_ head: RequestHead) {
        let request: UpgradeRequest
        switch UpgradeRequest.validate(head) {
        case .failure(let error):
            context.metrics.handshakeFailed(.init(status: error.status))
            reject(error, head: head)
            return
        case .success(let valid):
            request = valid
        }
        if context.draining {
            context.metrics.rejected(.draining)
            reject(HandshakeError(.serviceUnavailable, "server shutting down"))
            return
        }
        // The place is reserved before the application admits the client, so that an admitted client always
        // gets one (the application may have set state up for it by then).
        guard context.connections.reserve() else {
            context.metrics.rejected(.maxConnections)
            reject(HandshakeError(.serviceUnavailable, "too many connections"))
            return
        }
        if let refusal = context.application.shouldAccept(request, connection: self) {
            context.connections.release()
            context.metrics.rejected(.init(status: refusal.status))
            reject(refusal)
            return
        }
        var extensions: [(String, String)] = []
        var windowBits: UInt8 = 0
        if context.configuration.compression,
            let deflate = DeflateParameters.negotiate(head.values("Sec-WebSocket-Extensions"))
        {
            windowBits = UInt8(deflate.serverWindowBits)
            reader.enableDeflate(contextTakeover: !deflate.clientNoContextTakeover)
            extensions.append(("Sec-WebSocket-Extensions", deflate.response))
        }
        enqueue(
            SharedFrame.make(
                bytes: HTTPResponse.switchingProtocols(accept: request.acceptValue, extraHeaders: extensions)))
        phase = .open
        subscriber.opened(windowBits: windowBits)
        releasePendingPlace()
        context.metrics.connectionsOpened.add(fromOwner: 1)
        context.logger.debug("connection opened", ["conn": String(handlerID), "path": String(head.path)])
        context.application.opened(self)
        ensureScheduled()
    }

    private func reject(_ error: HandshakeError, head: RequestHead? = nil) {
        context.logger.debug(
            "handshake refused",
            ["conn": String(handlerID), "status": String(error.status.rawValue), "reason": error.reason])
        respond(HTTPResponse.error(error), to: head)
    }

    /// Sends a whole HTTP response and closes. A response to HEAD carries no body (RFC 9110 section 9.3.2).
    private func respond(_ response: [UInt8], to head: RequestHead?) {
        let bytes = head?.method == "HEAD" ? HTTPResponse.withoutBody(response) : response
        enqueue(SharedFrame.make(bytes: bytes))
        beginClosing()
    }

    private func readFrames(_ input: UnsafeMutableRawBufferPointer) {
        let outcome: WebSocketReader.Outcome
        if pending.isEmpty {
            outcome = reader.read(input, into: self)
            let rest = input.count - outcome.consumed
            if rest > 0 && outcome.stop == nil {
                pending.reserveCapacity(max(outcome.pendingFrameLength ?? 0, rest))
                pending.append(contentsOf: UnsafeRawBufferPointer(rebasing: input[outcome.consumed...]))
            }
        } else {
            pending.append(contentsOf: UnsafeRawBufferPointer(input))
            var bytes = pending
            pending = []
            outcome = bytes.withUnsafeMutableBytes { reader.read($0, into: self) }
            if outcome.stop == nil && outcome.consumed < bytes.count {
                bytes.removeSubrange(0..<outcome.consumed)
                if let frameLength = outcome.pendingFrameLength { bytes.reserveCapacity(frameLength) }
                pending = bytes
            }
        }
        if case .failure(let error) = outcome.stop {
            pending = []
            context.logger.debug(
                "protocol error",
                ["conn": String(handlerID), "code": String(error.closeCode.rawValue), "reason": error.reason])
            close(code: error.closeCode.rawValue, reason: error.reason)
        } else if outcome.stop == .closeReceived {
            pending = []
        }
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
        tls?.closed()
        if context.logger.enabled(.debug) {
            context.logger.debug(
                "connection closed",
                [
                    "conn": String(handlerID), "ms": String(loop.now - startedAt),
                    "deflate": deflateWindowBits == 0 ? "off" : "on",
                    "compressed_in": String(reader.compressedMessages), "compressed_out": String(subscriber.compressedSent),
                ])
        }
        context.connectionClosed()
        if wasOpen { connectionEnded() }
    }

    private func releasePendingPlace() {
        guard holdsPendingPlace else { return }
        holdsPendingPlace = false
        context.pendingHandshakes.release()
    }

    private func updateInterest() {
        var wanted = UInt32(CSystem_EPOLLIN)
        if let tls, tls.wantsWrite || tls.unsentCount > 0 { wanted |= UInt32(CSystem_EPOLLOUT) }
        if !subscriber.queue.isEmpty {
            wanted |= UInt32(CSystem_EPOLLOUT)
            // An echo-style peer that does not read its answers stops being read from, so its
            // queue cannot grow without bound.
            if subscriber.queue.queuedBytes >= context.configuration.maxBackpressure { wanted &= ~UInt32(CSystem_EPOLLIN) }
        }
        if wanted != interest {
            interest = wanted
            loop.setInterest(fd: fd, events: wanted)
        }
    }
}

extension Connection: WebSocketEventSink {
    public func receivedMessage(_ opcode: Opcode, _ payload: UnsafeRawBufferPointer) {
        guard phase == .open else { return }
        context.metrics.messagesIn.add(fromOwner: 1)
        context.application.received(self, opcode: opcode, payload: payload)
    }

    public func receivedPing(_ payload: UnsafeRawBufferPointer) {
        guard phase == .open else { return }
        enqueue(FrameWriter.frame(.pong, payload: payload))
    }

    public func receivedPong(_ payload: UnsafeRawBufferPointer) {}

    public func receivedClose(code: UInt16?, reason: UnsafeRawBufferPointer) {
        guard phase == .open else { return }
        // Echo the peer's code (section 5.5.1); an empty close is answered with an empty close.
        close(code: code, reason: "")
    }
}
