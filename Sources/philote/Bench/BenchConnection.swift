import CSystem
import Philote

#if canImport(Glibc)
    import Glibc
#endif

/// One bench connection on its loop: a non-blocking TCP connect, for wss:// a non-blocking TLS handshake (OpenSSL's
/// WANT_READ / WANT_WRITE turned into epoll interest), the opening handshake, then frames read with the project's
/// `WebSocketReader` (client side: unmasked frames, permessage-deflate when agreed).
/// A subscriber hands each message to its worker; a publisher (`BenchPublisher`) fills `outbound`.
final class BenchConnection: EventHandler, WebSocketEventSink {
    enum Role {
        case subscriber
        case publisher
    }

    enum State {
        case connecting
        /// wss://: the TLS handshake.
        case securing
        case handshaking
        case open
        case closed
    }

    let handlerID: UInt64
    let role: Role
    /// Index among the connections of its role, over the whole run.
    let index: Int
    let channel: Int
    private(set) var state = State.connecting
    private(set) var fd: Int32 = -1
    unowned(unsafe) let worker: BenchWorker
    unowned(unsafe) let loop: EventLoop
    /// A subscriber: what it received of each publisher of its channel (publisher p at p / channels). A
    /// pointer for the same reason as `BenchWorker`'s deliveries: no exclusivity check per message.
    let trackers: UnsafeMutableBufferPointer<SequenceTracker>
    /// A publisher's logic, one per stream it carries, set when it opens.
    var publishers: [BenchPublisher] = []

    private var reader = WebSocketReader(maxMessageSize: 64 << 20)
    private var handshake = ClientHandshake()
    /// The handshake's answer so far, then the start of a frame whose end has not arrived.
    private var inbound: [UInt8] = []
    /// Bytes to send; `outboundOffset` of them already went.
    var outbound: [UInt8] = []
    private var outboundOffset = 0
    private var watchingWrites = false
    /// wss://: the session (a `CSystem_TLS`); nil for ws://.
    private var tls: OpaquePointer?
    /// An SSL_read that needs the socket writable (it is retried on EPOLLOUT), and an SSL_write that needs input
    /// (retried after the next read): TLS can ask for either direction whatever the caller wanted.
    private var readWantsWrite = false
    private var writeWantsRead = false
    /// The server agreed to permessage-deflate: publishes go compressed.
    private(set) var deflating = false
    /// Deflate without the server's context takeover (Philote's answer): each compressed delivery stands alone,
    /// so the fast path may inflate it in the loop's shared buffer.
    private var inflatesAlone = false

    init(role: Role, index: Int, channel: Int, worker: BenchWorker, handlerID: UInt64) {
        self.role = role
        self.index = index
        self.channel = channel
        self.worker = worker
        self.loop = worker.loop
        self.handlerID = handlerID
        reader.parser.requireMask = false
        let count = role == .subscriber ? worker.plan.settings.publishers(on: channel) : 0
        trackers = .allocate(capacity: count)
        trackers.initialize(repeating: SequenceTracker())
    }

    deinit {
        if let tls { CSystem_tls_free(tls) }
        _ = trackers.deinitialize()
        trackers.deallocate()
    }

    var pendingOutput: Int { outbound.count - outboundOffset }

    // MARK: Connecting

    /// Starts the connect; false (with the reason given to the worker) when it fails at once.
    func connect(to address: BenchAddress) -> Bool {
        let type = Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue)
        fd = socket(address.family, type, 0)
        guard fd >= 0 else {
            fail("socket: \(POSIXIO.describe(errno))", refused: false)
            return false
        }
        // Publishes are small and latency is what is measured: no Nagle delay.
        var on: Int32 = 1
        _ = setsockopt(fd, CSystem_IPPROTO_TCP(), TCP_NODELAY, &on, socklen_t(MemoryLayout<Int32>.size))
        let result = address.withSockaddr { Glibc.connect(fd, $0, $1) }
        if result != 0 && errno != EINPROGRESS {
            let code = errno
            Glibc.close(fd)
            fd = -1
            fail("connect: \(POSIXIO.describe(code))", refused: false)
            return false
        }
        do {
            try loop.register(fd: fd, handler: self, events: UInt32(CSystem_EPOLLOUT))
        } catch {
            Glibc.close(fd)
            fd = -1
            fail("epoll: \(error)", refused: false)
            return false
        }
        return true
    }

    private func connected() {
        var error: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        if getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length) != 0 { error = errno }
        if error != 0 {
            fail("connect: \(POSIXIO.describe(error))", refused: false)
            return
        }
        if let context = worker.plan.tls {
            guard let session = CSystem_tls_client_new(context.context, fd, context.host) else {
                fail("TLS: cannot start a session", refused: false)
                return
            }
            tls = session
            state = .securing
            secure()
        } else {
            upgrade()
        }
    }

    /// One step of the TLS handshake, waiting for whichever direction OpenSSL asks for.
    private func secure() {
        guard let tls else { return }
        switch BenchTLSContext.handshake(tls) {
        case .done:
            upgrade()
        case .wantsRead:
            loop.setInterest(fd: fd, events: UInt32(CSystem_EPOLLIN))
        case .wantsWrite:
            loop.setInterest(fd: fd, events: UInt32(CSystem_EPOLLIN | CSystem_EPOLLOUT))
        case .failed(let reason):
            fail("TLS handshake with \(worker.plan.url.host) failed: \(reason)", refused: false)
        }
    }

    /// Sends the upgrade request.
    private func upgrade() {
        state = .handshaking
        outbound = worker.plan.upgradeRequest(key: handshake.key, role: role, index: index, channel: channel)
        watchingWrites = false
        loop.setInterest(fd: fd, events: UInt32(CSystem_EPOLLIN))
        flushOutbound()
    }

    private func readHandshake(_ bytes: UnsafeRawBufferPointer) {
        inbound.append(contentsOf: bytes)
        switch HTTPResponseHead.parse(inbound) {
        case .incomplete:
            return
        case .invalid(let why):
            fail("handshake: \(why)", refused: false)
        case .head(let head, let length):
            let rest = Array(inbound[length...])
            if let failure = handshake.check(head, body: rest) {
                fail(failure.message, refused: true)
                return
            }
            if let takeover = ClientHandshake.negotiatedDeflate(head) {
                reader.enableDeflate(contextTakeover: takeover)
                deflating = true
                inflatesAlone = !takeover
            }
            inbound = []
            state = .open
            worker.opened(self)
            guard state == .open, !rest.isEmpty else { return }
            var frames = rest
            let consumed = frames.withUnsafeMutableBytes { readFrames($0) }
            if state == .open && consumed < frames.count { inbound = Array(frames[consumed...]) }
        }
    }

    // MARK: Events

    func handleEvents(_ events: UInt32) {
        switch state {
        case .closed:
            return
        case .connecting:
            if events & UInt32(CSystem_EPOLLOUT | CSystem_EPOLLERR | CSystem_EPOLLHUP) != 0 { connected() }
        case .securing:
            secure()
        case .handshaking, .open:
            if events & UInt32(CSystem_EPOLLOUT) != 0 {
                flushOutbound()
                if state == .open && pendingOutput == 0 { for publisher in publishers { publisher.writable() } }
                if readWantsWrite && state != .closed {
                    readWantsWrite = false
                    readAvailable()
                }
            }
            if state != .closed && events & UInt32(CSystem_EPOLLIN | CSystem_EPOLLERR | CSystem_EPOLLHUP) != 0 {
                readAvailable()
            }
        }
    }

    func handleTimer(scheduled: UInt64) {
        if state == .open { for publisher in publishers { publisher.timerFired(scheduled: scheduled) } }
    }

    func flush() {}

    // MARK: Reading

    /// What one receive got.
    private enum Received {
        /// Bytes; `drained`: the socket (and OpenSSL) had no more, so no second read is worth trying now.
        case bytes(Int, drained: Bool)
        case nothing
        case ended(String)
    }

    /// Reads into `base` (`space` bytes at most): plain, one read; TLS, records until OpenSSL wants more input
    /// or less than a record's room is left (SSL_read returns one record at a time). A TLS failure after some
    /// bytes returns the bytes; the next call reports it.
    private func receive(into base: UnsafeMutableRawPointer, space: Int) -> Received {
        guard let tls else {
            while true {
                let count = Glibc.read(fd, base, space)
                if count > 0 { return .bytes(count, drained: count < space) }
                if count == 0 { return .ended("the server closed the connection") }
                let code = errno
                if code == EINTR { continue }
                if code == EAGAIN || code == EWOULDBLOCK { return .nothing }
                return .ended(POSIXIO.describe(code))
            }
        }
        var got = 0
        while got == 0 || space - got >= Self.tlsRecordRoom {
            let result = CSystem_tls_read(tls, base + got, Int32(clamping: space - got))
            if result > 0 {
                got += Int(result)
                continue
            }
            switch result {
            case Int32(CSystem_TLS_WANT_READ):
                return got > 0 ? .bytes(got, drained: true) : .nothing
            case Int32(CSystem_TLS_WANT_WRITE):
                readWantsWrite = true
                watchWrites(true)
                return got > 0 ? .bytes(got, drained: true) : .nothing
            default:
                if got > 0 { return .bytes(got, drained: false) }
                return .ended(result == Int32(CSystem_TLS_CLOSED) ? "the server ended the TLS session" : "TLS: the connection failed")
            }
        }
        return .bytes(got, drained: false)
    }

    /// Room for one more TLS record (16 KiB of plaintext) in the read buffer.
    private static let tlsRecordRoom = 16384 + 512

    /// Reads until the socket is drained (or 8 reads, so one busy connection cannot hold the loop, unless OpenSSL
    /// holds input that epoll will not report again). A partial frame is kept in `inbound` and copied in front of
    /// the next read, so frames are parsed where they lie.
    private func readAvailable() {
        let buffer = loop.readBuffer
        var reads = 0
        while true {
            if inbound.count > buffer.count / 2 {
                readLarge()
                return
            }
            let have = inbound.count
            if have > 0 {
                inbound.withUnsafeBytes { buffer.baseAddress!.copyMemory(from: $0.baseAddress!, byteCount: have) }
            }
            let count: Int
            let drained: Bool
            switch receive(into: buffer.baseAddress! + have, space: buffer.count - have) {
            case .nothing:
                return
            case .ended(let reason):
                ended(code: 0, reason: reason)
                return
            case .bytes(let got, let wasDrained):
                count = got
                drained = wasDrained
            }
            worker.readTime = BenchClock.nanoseconds()
            let total = have + count
            let bytes = UnsafeMutableRawBufferPointer(start: buffer.baseAddress, count: total)
            if state == .handshaking {
                inbound = []
                readHandshake(UnsafeRawBufferPointer(bytes))
            } else {
                let consumed = readFrames(bytes)
                guard state == .open else { return }
                inbound.removeAll(keepingCapacity: true)
                if consumed < total { inbound.append(contentsOf: bytes[consumed...]) }
            }
            if writeWantsRead && state != .closed {
                writeWantsRead = false
                flushOutbound()
            }
            reads += 1
            if state != .open || drained { return }
            if reads >= 8 && !(tls.map(BenchTLSContext.hasPending) ?? false) { return }
        }
    }

    /// A frame larger than half the loop's read buffer: read into the buffer and collect in `inbound`.
    private func readLarge() {
        let buffer = loop.readBuffer
        while true {
            let count: Int
            let drained: Bool
            switch receive(into: buffer.baseAddress!, space: buffer.count) {
            case .nothing:
                return
            case .ended(let reason):
                ended(code: 0, reason: reason)
                return
            case .bytes(let got, let wasDrained):
                count = got
                drained = wasDrained
            }
            worker.readTime = BenchClock.nanoseconds()
            inbound.append(contentsOf: UnsafeRawBufferPointer(start: buffer.baseAddress, count: count))
            let consumed = inbound.withUnsafeMutableBytes { readFrames($0) }
            guard state == .open else { return }
            inbound.removeFirst(consumed)
            if drained { return }
        }
    }

    /// Decodes the frames in `bytes`; the count of bytes used. Whole plain text frames, nearly all a server
    /// sends a bench subscriber, go straight to the worker (`plainTextFrames`); the reader takes the rest.
    private func readFrames(_ bytes: UnsafeMutableRawBufferPointer) -> Int {
        var offset = 0
        if !reader.assembler.isAssembling {
            let (used, incomplete) = plainTextFrames(UnsafeRawBufferPointer(bytes))
            offset = used
            if incomplete { return offset }
        }
        guard offset < bytes.count, state == .open else { return offset }
        let outcome = reader.read(UnsafeMutableRawBufferPointer(rebasing: bytes[offset...]), into: self)
        if case .failure(let error) = outcome.stop {
            worker.protocolError(self, "\(error)")
            send(ClientFrameEncoder.close(code: 1002, maskKey: 0x5A5A_5A5A))
            shutDown()
        }
        return offset + outcome.consumed
    }

    /// Hands the whole, final, unmasked text frames (first byte 0x81, or 0xC1 compressed without context takeover,
    /// inflated in the loop's buffer) at the start of `bytes` to the worker without the full reader. Such frames pass every rule the reader checks but one it need not check
    /// here: the UTF-8 check of each message, which the harness (wsload) does not make either (a stamp is read
    /// from ASCII only; a message it cannot read counts as unstamped). Stops at the first frame of another kind
    /// (`incomplete` false: the reader takes it) or at a plain text frame not all here (`incomplete` true).
    @inline(__always)
    private func plainTextFrames(_ bytes: UnsafeRawBufferPointer) -> (used: Int, incomplete: Bool) {
        let base = bytes.baseAddress
        let count = bytes.count
        var offset = 0
        while count - offset >= 2 {
            let first = base!.load(fromByteOffset: offset, as: UInt8.self)
            let second = base!.load(fromByteOffset: offset + 1, as: UInt8.self)
            let compressed = first == 0xC1 && inflatesAlone
            guard first == 0x81 || compressed, second & 0x80 == 0 else { return (offset, false) }
            var header = 2
            var length = Int(second)
            if length == 126 {
                guard count - offset >= 4 else { return (offset, true) }
                length = Int(base!.load(fromByteOffset: offset + 2, as: UInt8.self)) << 8
                    | Int(base!.load(fromByteOffset: offset + 3, as: UInt8.self))
                header = 4
            } else if length == 127 {
                // Rare for a bench message: the reader checks the size limit.
                return (offset, false)
            }
            guard count - offset - header >= length else { return (offset, true) }
            let payload = UnsafeRawBufferPointer(start: base! + offset + header, count: length)
            if compressed {
                // A message that will not inflate here is the reader's to refuse, with its own error.
                guard let message = worker.inflater.inflate(payload) else { return (offset, false) }
                if role == .subscriber { worker.received(message, by: self) }
            } else if role == .subscriber {
                worker.received(payload, by: self)
            }
            offset += header + length
        }
        return (offset, count > offset)
    }

    func receivedMessage(_ opcode: Opcode, _ payload: UnsafeRawBufferPointer) {
        if role == .subscriber { worker.received(payload, by: self) }
    }

    func receivedPing(_ payload: UnsafeRawBufferPointer) {
        send(ClientFrameEncoder.frame(.pong, payload: payload, maskKey: 0x1234_5678))
    }

    func receivedPong(_ payload: UnsafeRawBufferPointer) {}

    func receivedClose(code: UInt16?, reason: UnsafeRawBufferPointer) {
        // Echo the close (section 5.5.1), then count how the server ended the connection.
        send(ClientFrameEncoder.close(code: code, maskKey: 0x1357_9BDF))
        ended(code: code ?? 1005, reason: String(decoding: reason, as: UTF8.self))
    }

    // MARK: Writing

    func send(_ bytes: [UInt8]) {
        outbound.append(contentsOf: bytes)
        flushOutbound()
    }

    /// Writes what is queued; what the socket does not take waits for EPOLLOUT.
    func flushOutbound() {
        guard fd >= 0 else { return }
        while outboundOffset < outbound.count {
            let count = outbound.withUnsafeBytes { transmit($0.baseAddress! + outboundOffset, $0.count - outboundOffset) }
            if count > 0 {
                outboundOffset += count
                continue
            }
            let code = count == Self.tlsFailed ? EPROTO : errno
            if count < 0 && code == EINTR { continue }
            if count == Self.tlsWantsRead || (count < 0 && (code == EAGAIN || code == EWOULDBLOCK)) {
                if count != Self.tlsWantsRead { watchWrites(true) }
                // Keep the queue from growing its dead head without end.
                if outboundOffset > 1 << 20 {
                    outbound.removeFirst(outboundOffset)
                    outboundOffset = 0
                }
                return
            }
            if state == .open { ended(code: 0, reason: POSIXIO.describe(code)) } else { shutDown() }
            return
        }
        outbound.removeAll(keepingCapacity: outbound.capacity <= 1 << 20)
        outboundOffset = 0
        watchWrites(readWantsWrite)
    }

    /// `transmit`'s answers besides a count: SSL_write needs input first, or failed.
    private static let tlsWantsRead = -2
    private static let tlsFailed = -3

    /// Writes from `base`: bytes written (> 0), or -1 with errno (EAGAIN: the socket is full), or a TLS answer.
    /// With TLS, a write that would block is retried later from the same offset, from a buffer that may have
    /// moved and grown: the context allows both (SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER, ENABLE_PARTIAL_WRITE).
    private func transmit(_ base: UnsafeRawPointer, _ count: Int) -> Int {
        guard let tls else { return Glibc.write(fd, base, count) }
        let result = CSystem_tls_write(tls, base, Int32(clamping: count))
        if result > 0 { return Int(result) }
        switch result {
        case Int32(CSystem_TLS_WANT_WRITE):
            errno = EAGAIN
            return -1
        case Int32(CSystem_TLS_WANT_READ):
            writeWantsRead = true
            return Self.tlsWantsRead
        default:
            return Self.tlsFailed
        }
    }

    private func watchWrites(_ on: Bool) {
        guard on != watchingWrites, state != .closed else { return }
        watchingWrites = on
        loop.setInterest(fd: fd, events: UInt32(CSystem_EPOLLIN) | (on ? UInt32(CSystem_EPOLLOUT) : 0))
    }

    // MARK: Ending

    private func fail(_ reason: String, refused: Bool) {
        shutDown()
        worker.failed(self, reason: reason, refused: refused)
    }

    /// An open connection ended: `code` from the server's close frame, 0 when it just dropped.
    private func ended(code: UInt16, reason: String) {
        guard state != .closed else { return }
        let wasOpen = state == .open
        shutDown()
        if wasOpen {
            worker.closed(self, code: code)
        } else {
            worker.failed(self, reason: "handshake: \(reason)", refused: false)
        }
    }

    func shutDown() {
        guard state != .closed else { return }
        state = .closed
        if let tls {
            CSystem_tls_free(tls)
            self.tls = nil
        }
        if fd >= 0 {
            loop.deregister(fd: fd)
            Glibc.close(fd)
            fd = -1
        }
    }
}
