import CSystem
import Philote

#if canImport(Glibc)
    import Glibc
#endif

/// One bench connection on its loop: a non-blocking TCP connect, the opening handshake, then frames read
/// with the project's `WebSocketReader` (client side: unmasked frames, permessage-deflate when agreed).
/// A subscriber hands each message to its worker; a publisher (`BenchPublisher`) fills `outbound`.
final class BenchConnection: EventHandler, WebSocketEventSink {
    enum Role {
        case subscriber
        case publisher
    }

    enum State {
        case connecting
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
    /// A publisher's logic, set when it opens.
    var publisher: BenchPublisher?

    private var reader = WebSocketReader(maxMessageSize: 64 << 20)
    private var handshake = ClientHandshake()
    /// The handshake's answer so far, then the start of a frame whose end has not arrived.
    private var inbound: [UInt8] = []
    /// Bytes to send; `outboundOffset` of them already went.
    var outbound: [UInt8] = []
    private var outboundOffset = 0
    private var watchingWrites = false

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
        state = .handshaking
        outbound = worker.plan.upgradeRequest(key: handshake.key, role: role, channel: channel)
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
            if let takeover = ClientHandshake.negotiatedDeflate(head) { reader.enableDeflate(contextTakeover: takeover) }
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
        case .handshaking, .open:
            if events & UInt32(CSystem_EPOLLOUT) != 0 {
                flushOutbound()
                if state == .open && pendingOutput == 0 { publisher?.writable() }
            }
            if state != .closed && events & UInt32(CSystem_EPOLLIN | CSystem_EPOLLERR | CSystem_EPOLLHUP) != 0 {
                readAvailable()
            }
        }
    }

    func handleTimer(scheduled: UInt64) {
        if state == .open { publisher?.timerFired() }
    }

    func flush() {}

    // MARK: Reading

    /// Reads until the socket is drained (or 8 reads, so one busy connection cannot hold the loop). A partial
    /// frame is kept in `inbound` and copied in front of the next read, so frames are parsed where they lie.
    private func readAvailable() {
        let buffer = loop.readBuffer
        for _ in 0..<8 {
            if inbound.count > buffer.count / 2 {
                readLarge()
                return
            }
            let have = inbound.count
            if have > 0 {
                inbound.withUnsafeBytes { buffer.baseAddress!.copyMemory(from: $0.baseAddress!, byteCount: have) }
            }
            let space = buffer.count - have
            let count = Glibc.read(fd, buffer.baseAddress! + have, space)
            if count < 0 {
                let code = errno
                if code == EINTR { continue }
                if code == EAGAIN || code == EWOULDBLOCK { return }
                ended(code: 0, reason: POSIXIO.describe(code))
                return
            }
            if count == 0 {
                ended(code: 0, reason: "the server closed the connection")
                return
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
            if state != .open || count < space { return }
        }
    }

    /// A frame larger than half the loop's read buffer: read into the buffer and collect in `inbound`.
    private func readLarge() {
        let buffer = loop.readBuffer
        while true {
            let count = Glibc.read(fd, buffer.baseAddress!, buffer.count)
            if count < 0 {
                let code = errno
                if code == EINTR { continue }
                if code != EAGAIN && code != EWOULDBLOCK { ended(code: 0, reason: POSIXIO.describe(code)) }
                return
            }
            if count == 0 {
                ended(code: 0, reason: "the server closed the connection")
                return
            }
            worker.readTime = BenchClock.nanoseconds()
            inbound.append(contentsOf: UnsafeRawBufferPointer(start: buffer.baseAddress, count: count))
            let consumed = inbound.withUnsafeMutableBytes { readFrames($0) }
            guard state == .open else { return }
            inbound.removeFirst(consumed)
            if count < buffer.count { return }
        }
    }

    /// Decodes the frames in `bytes`; the count of bytes used.
    private func readFrames(_ bytes: UnsafeMutableRawBufferPointer) -> Int {
        let outcome = reader.read(bytes, into: self)
        if case .failure(let error) = outcome.stop {
            worker.protocolError(self, "\(error)")
            send(ClientFrameEncoder.close(code: 1002, maskKey: 0x5A5A_5A5A))
            shutDown()
        }
        return outcome.consumed
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
            let count = outbound.withUnsafeBytes {
                Glibc.write(fd, $0.baseAddress! + outboundOffset, $0.count - outboundOffset)
            }
            if count > 0 {
                outboundOffset += count
                continue
            }
            let code = errno
            if count < 0 && code == EINTR { continue }
            if count < 0 && (code == EAGAIN || code == EWOULDBLOCK) {
                watchWrites(true)
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
        watchWrites(false)
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
        if fd >= 0 {
            loop.deregister(fd: fd)
            Glibc.close(fd)
            fd = -1
        }
    }
}
