import CSystem

#if canImport(Glibc)
    import Glibc
#endif

/// What a link tells its shard, on the broker's loop.
protocol RedisLinkDelegate: AnyObject {
    /// Connected and through AUTH/SELECT/PING: commands may flow.
    func linkReady(_ link: RedisLink)
    /// The connection is gone (or never came up); the link retries by itself.
    func linkLost(_ link: RedisLink)
    /// A pub/sub reply on a subscribing link: `message`, `subscribe` or `unsubscribe`.
    func link(_ link: RedisLink, pushed reply: UnsafeMutablePointer<redisReply>)
}

/// One hiredis asynchronous connection driven by our reactor: hiredis's adapter hooks (add/remove read
/// and write interest, clean-up) change this handler's epoll registration, and readiness events call back
/// into hiredis. No thread of its own. When the connection fails or drops it reconnects with capped
/// exponential back-off, logging once per change of state, not per attempt. Touched only on its loop (the
/// host name lookup's answer comes back through the loop's inbox), hence unchecked Sendable.
final class RedisLink: EventHandler, @unchecked Sendable {
    enum State {
        /// Waiting to (re)connect.
        case idle
        /// TCP connect or AUTH/SELECT/PING in flight.
        case connecting
        case ready
    }

    let handlerID = HandlerIDs.make()
    let endpoint: RedisEndpoint
    /// "publish" or "subscribe", for logs.
    let role: String
    private let loop: EventLoop
    private let logger: any LogSink
    /// Connect, command and ping timeout (ms).
    private let timeout: UInt64
    /// Sends PING every second, to notice a Redis that stopped answering. Only on a link that
    /// is not subscribed: in subscribe mode a PING's reply could be mistaken for a pushed message.
    private let pings: Bool
    weak var delegate: RedisLinkDelegate?

    private(set) var state = State.idle
    private var context: UnsafeMutablePointer<redisAsyncContext>?
    private var fd: Int32 = -1
    private var interest: UInt32 = 0
    /// Bumped per connection attempt, so that a timer set for an earlier one does nothing.
    private var generation = 0
    private var failures = 0
    /// Whether the last state change was logged as "up", so an outage is logged once however long it lasts.
    private var loggedUp = false
    /// Connections that got through the handshake, for the reconnect count.
    private(set) var connections = 0
    /// Why this side closed the connection (hiredis reports no error then).
    private var closeReason: String?
    private var pingSentAt: UInt64?
    /// PUBLISH bytes handed to hiredis whose replies have not come back: the queue toward Redis.
    private(set) var pendingBytes = 0

    init(endpoint: RedisEndpoint, role: String, loop: EventLoop, logger: any LogSink, timeout: UInt64, pings: Bool) {
        self.endpoint = endpoint
        self.role = role
        self.loop = loop
        self.logger = logger
        self.timeout = timeout
        self.pings = pings
    }

    var isReady: Bool { state == .ready }

    // MARK: Connecting

    /// Starts connecting now; afterwards the link keeps itself connected for the life of the process.
    func start() {
        guard state == .idle else { return }
        generation += 1
        let attempt = generation
        state = .connecting
        loop.schedule(at: loop.now + timeout) { [self] in
            guard generation == attempt, state == .connecting else { return }
            if context != nil {
                close(because: "no answer within \(timeout) ms")
            } else {
                // Still resolving the host name: the lookup's late answer is ignored.
                generation += 1
                failed("no address for the host within \(timeout) ms")
            }
        }
        switch endpoint.address {
        case .unix(let path):
            open(redisAsyncConnectUnix(path))
        case .tcp(let host, let port) where HostResolver.isNumeric(host):
            open(redisAsyncConnect(host, Int32(port)))
        case .tcp(let host, let port):
            HostResolver.resolve(host, on: loop) { [self] result in
                guard generation == attempt, state == .connecting else { return }
                switch result {
                case .success(let addresses):
                    // Successive attempts take the addresses in turn (a name may have an IPv6 address where
                    // Redis listens on IPv4 only), as hiredis itself would within one attempt.
                    open(redisAsyncConnect(addresses[failures % addresses.count], Int32(port)))
                case .failure(let error): failed(error.reason)
                }
            }
        }
    }

    /// Takes over a context hiredis has begun connecting.
    private func open(_ made: UnsafeMutablePointer<redisAsyncContext>?) {
        guard let made else {
            failed("out of memory")
            return
        }
        if made.pointee.err != 0 {
            let reason = String(cString: made.pointee.errstr)
            redisAsyncFree(made)
            failed(reason)
            return
        }
        context = made
        fd = made.pointee.c.fd
        interest = 0
        let me = Unmanaged.passUnretained(self).toOpaque()
        made.pointee.data = me
        made.pointee.ev.data = me
        // hiredis's adapter hooks; each gets `ev.data`, this link.
        made.pointee.ev.addRead = { RedisLink.from($0).want(UInt32(CSystem_EPOLLIN), true) }
        made.pointee.ev.delRead = { RedisLink.from($0).want(UInt32(CSystem_EPOLLIN), false) }
        made.pointee.ev.addWrite = { RedisLink.from($0).want(UInt32(CSystem_EPOLLOUT), true) }
        made.pointee.ev.delWrite = { RedisLink.from($0).want(UInt32(CSystem_EPOLLOUT), false) }
        made.pointee.ev.cleanup = { RedisLink.from($0).contextFreed() }
        do {
            try loop.register(fd: fd, handler: self, events: 0)
        } catch {
            redisAsyncFree(made)
            return
        }
        // Setting the connect callback asks for write readiness: that is how a non-blocking connect ends.
        redisAsyncSetConnectCallback(made) { context, status in
            guard status != REDIS_OK, let context else { return }
            RedisLink.from(context.pointee.data).closeReason = String(cString: context.pointee.errstr)
        }
        if let password = endpoint.password {
            command(endpoint.user.map { ["AUTH", $0, password] } ?? ["AUTH", password], redisHandshakeReplied)
        }
        if endpoint.database != 0 { command(["SELECT", String(endpoint.database)], redisHandshakeReplied) }
        command(["PING"], redisHandshakeReplied, privdata: UnsafeMutableRawPointer(bitPattern: 1))
    }

    /// Closes the current connection; the link reconnects after back-off. Safe inside a reply
    /// callback: hiredis then frees the context once the callback returns.
    func close(because reason: String) {
        guard let context else { return }
        closeReason = closeReason ?? reason
        redisAsyncFree(context)
    }

    private func failed(_ reason: String) {
        state = .idle
        interest = 0
        pendingBytes = 0
        pingSentAt = nil
        let wasReady = loggedUp
        if loggedUp || failures == 0 {
            logger.warning(
                wasReady ? "redis connection lost" : "redis unavailable",
                ["redis": endpoint.label, "link": role, "error": reason])
            loggedUp = false
        }
        failures += 1
        delegate?.linkLost(self)
        // 100 ms doubling to 5 s: quick after a blip, gentle during a long outage.
        let delay = min(5000, 100 << min(failures - 1, 6))
        let attempt = generation
        loop.schedule(at: loop.now + UInt64(delay)) { [self] in
            if generation == attempt, state == .idle { start() }
        }
    }

    /// hiredis's clean-up hook: the context is being freed and its descriptor is about to be closed. Runs
    /// exactly once per context, whether the connection failed, dropped or was closed here.
    private func contextFreed() {
        guard let freed = context else { return }
        let reason =
            closeReason ?? (freed.pointee.err != 0 ? String(cString: freed.pointee.errstr) : "closed by Redis")
        loop.deregister(fd: fd)
        fd = -1
        context = nil
        closeReason = nil
        failed(reason)
    }

    private func handshakeDone() {
        state = .ready
        failures = 0
        connections += 1
        if !loggedUp {
            logger.info("redis connected", ["redis": endpoint.label, "link": role])
            loggedUp = true
        }
        if pings { schedulePing() }
        delegate?.linkReady(self)
    }

    private func schedulePing() {
        let attempt = generation
        loop.schedule(at: loop.now + 1000) { [self] in
            guard generation == attempt, state == .ready else { return }
            if let sentAt = pingSentAt {
                if loop.now - sentAt >= timeout { close(because: "no answer to PING within \(timeout) ms") }
            } else {
                pingSentAt = loop.now
                command(["PING"], redisPingReplied)
            }
            schedulePing()
        }
    }

    // MARK: Commands

    /// Queues a command; hiredis writes it when the socket is writable. Returns false when not connected.
    @discardableResult
    func command(
        _ arguments: [String], _ callback: RedisReplyHandler?, privdata: UnsafeMutableRawPointer? = nil
    ) -> Bool {
        command(arguments.map { Array($0.utf8) }, callback, privdata: privdata)
    }

    @discardableResult
    func command(
        _ arguments: [[UInt8]], _ callback: RedisReplyHandler?, privdata: UnsafeMutableRawPointer? = nil
    ) -> Bool {
        guard let context else { return false }
        // One contiguous copy of the arguments, so that every argv pointer is valid for the whole call;
        // hiredis copies them into its output buffer before it returns.
        var joined: [UInt8] = []
        joined.reserveCapacity(arguments.reduce(1) { $0 + $1.count })
        var lengths: [Int] = []
        lengths.reserveCapacity(arguments.count)
        for argument in arguments {
            joined.append(contentsOf: argument)
            lengths.append(argument.count)
        }
        joined.append(0)
        let status = joined.withUnsafeBytes { bytes in
            let base = bytes.baseAddress!.assumingMemoryBound(to: CChar.self)
            var pointers: [UnsafePointer<CChar>?] = []
            pointers.reserveCapacity(arguments.count)
            var offset = 0
            for length in lengths {
                pointers.append(base + offset)
                offset += length
            }
            return redisAsyncCommandArgv(context, callback, privdata, Int32(arguments.count), &pointers, lengths)
        }
        return status == REDIS_OK
    }

    /// Queues a command whose reply goes to `reply`, on this link's loop; nil there when the connection is lost
    /// before Redis answered (hiredis calls every pending callback then). `pending` bytes count toward
    /// `pendingBytes` until then. Returns false, and `reply` is never called, when not connected.
    @discardableResult
    func command(
        _ arguments: [[UInt8]], pending: Int = 0, reply: @escaping (UnsafeMutablePointer<redisReply>?) -> Void
    ) -> Bool {
        let box = Unmanaged.passRetained(
            RedisReplyBox { [unowned self] answer in
                pendingBytes -= pending
                reply(answer)
            }
        ).toOpaque()
        guard command(arguments, redisBoxedReplied, privdata: box) else {
            Unmanaged<RedisReplyBox>.fromOpaque(box).release()
            return false
        }
        pendingBytes += pending
        return true
    }

    /// PUBLISH `payload` to `channel`; its bytes count toward `pendingBytes` until Redis answers. The arguments
    /// are handed to hiredis where they lie (no joined copy, as `command` makes): this runs once per publish.
    func publish(channel: [UInt8], payload: [UInt8]) -> Bool {
        guard let context else { return false }
        let size = channel.count + payload.count
        let status = RedisLink.publishWord.withUnsafeBufferPointer { word in
            channel.withUnsafeBufferPointer { channel in
                payload.withUnsafeBufferPointer { payload in
                    var pointers: [UnsafePointer<CChar>?] = [word, channel, payload].map {
                        UnsafeRawPointer($0.baseAddress).map { $0.assumingMemoryBound(to: CChar.self) }
                    }
                    let lengths = [word.count, channel.count, payload.count]
                    return redisAsyncCommandArgv(
                        context, redisPublished, UnsafeMutableRawPointer(bitPattern: size), 3, &pointers, lengths)
                }
            }
        }
        guard status == REDIS_OK else { return false }
        pendingBytes += size
        return true
    }

    private static let publishWord = Array("PUBLISH".utf8)

    // MARK: Replies

    fileprivate static func from(_ pointer: UnsafeRawPointer?) -> RedisLink {
        Unmanaged<RedisLink>.fromOpaque(pointer!).takeUnretainedValue()
    }

    /// AUTH, SELECT and the PING that ends the handshake (`final`).
    fileprivate func handshakeReplied(_ reply: UnsafeMutablePointer<redisReply>, final: Bool) {
        if reply.pointee.type == REDIS_REPLY_ERROR {
            close(because: String(cString: reply.pointee.str))
        } else if final, state == .connecting {
            handshakeDone()
        }
    }

    fileprivate func pingReplied() { pingSentAt = nil }

    fileprivate func publishReplied(size: Int) { pendingBytes -= size }

    // MARK: Reactor
    // MARK: Reactor

    private func want(_ bit: UInt32, _ on: Bool) {
        let updated = on ? interest | bit : interest & ~bit
        guard updated != interest else { return }
        interest = updated
        if fd >= 0 { loop.setInterest(fd: fd, events: updated) }
    }

    func handleEvents(_ events: UInt32) {
        guard let context else { return }
        if events & UInt32(CSystem_EPOLLIN | CSystem_EPOLLERR | CSystem_EPOLLHUP) != 0 {
            redisAsyncHandleRead(context)
        }
        // The read may have freed the context (hiredis then called `contextFreed`).
        if events & UInt32(CSystem_EPOLLOUT) != 0, let context = self.context {
            redisAsyncHandleWrite(context)
        }
    }

    func handleTimer(scheduled: UInt64) {}
    func flush() {}
}

/// What hiredis calls with a reply (or nil when the connection goes before the reply came): the context,
/// the reply, and the `privdata` given with the command.
typealias RedisReplyHandler =
    @convention(c) (
        UnsafeMutablePointer<redisAsyncContext>?, UnsafeMutableRawPointer?, UnsafeMutableRawPointer?
    ) -> Void

// The reply handlers are C function pointers: free functions that find their link through the context's
// `data`. privdata 1 marks the handshake's last command; a PUBLISH's privdata is its byte count.

private func redisHandshakeReplied(
    _ context: UnsafeMutablePointer<redisAsyncContext>?, _ reply: UnsafeMutableRawPointer?,
    _ privdata: UnsafeMutableRawPointer?
) {
    guard let context, let reply else { return }
    RedisLink.from(context.pointee.data).handshakeReplied(
        reply.assumingMemoryBound(to: redisReply.self), final: privdata != nil)
}

private func redisPingReplied(
    _ context: UnsafeMutablePointer<redisAsyncContext>?, _ reply: UnsafeMutableRawPointer?,
    _ privdata: UnsafeMutableRawPointer?
) {
    guard let context, reply != nil else { return }
    RedisLink.from(context.pointee.data).pingReplied()
}

private func redisPublished(
    _ context: UnsafeMutablePointer<redisAsyncContext>?, _ reply: UnsafeMutableRawPointer?,
    _ privdata: UnsafeMutableRawPointer?
) {
    guard let context else { return }
    RedisLink.from(context.pointee.data).publishReplied(size: Int(bitPattern: privdata))
}

/// For SUBSCRIBE commands: hiredis routes every later reply for the channel (the subscribe confirmation,
/// messages, the unsubscribe confirmation) here.
func redisSubscriptionReplied(
    _ context: UnsafeMutablePointer<redisAsyncContext>?, _ reply: UnsafeMutableRawPointer?,
    _ privdata: UnsafeMutableRawPointer?
) {
    guard let context, let reply else { return }
    let link = RedisLink.from(context.pointee.data)
    link.delegate?.link(link, pushed: reply.assumingMemoryBound(to: redisReply.self))
}

/// A reply handler carried through hiredis as a command's privdata (retained until the reply comes).
final class RedisReplyBox {
    let handle: (UnsafeMutablePointer<redisReply>?) -> Void

    init(_ handle: @escaping (UnsafeMutablePointer<redisReply>?) -> Void) {
        self.handle = handle
    }
}

private func redisBoxedReplied(
    _ context: UnsafeMutablePointer<redisAsyncContext>?, _ reply: UnsafeMutableRawPointer?,
    _ privdata: UnsafeMutableRawPointer?
) {
    guard let privdata else { return }
    Unmanaged<RedisReplyBox>.fromOpaque(privdata).takeRetainedValue().handle(
        reply?.assumingMemoryBound(to: redisReply.self))
}
