import CSystem
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// One thread's reactor: level-triggered epoll, an eventfd for wake-ups from other threads, a heap of
/// deadlines, and a before-sleep pass that flushes every connection that queued output this tick.
/// Everything but `execute` and `stop` must be called on the loop's own thread.
public final class EventLoop: @unchecked Sendable {
    public let index: Int
    private let epollFD: Int32
    private let wakeFD: Int32
    /// This loop's registered handlers by descriptor. A dictionary, not a table indexed by descriptor number:
    /// descriptor numbers are shared by the whole process, so with a table every loop held a slot for every
    /// descriptor any loop had ever used (16 bytes each, never given back); this holds only the loop's own.
    private var handlers: [Int32: EventHandler] = [:]
    private var timers = TimerHeap()
    /// Handlers to flush this tick, unretained: a handler is kept alive by `handlers` while registered, and by
    /// `retired` from the moment it is deregistered until the end of the tick's flush pass.
    private var dirty = DirtyList()
    private var retired: [EventHandler] = []
    /// Objects kept alive until the end of this tick's flush pass (`keepAlive`), one reference each.
    private var keptAlive: [AnyObject] = []
    #if DEBUG
        /// Borrowers that still refer to kept-alive objects without a reference of their own (`borrowOpened`).
        private var openBorrows = 0
    #endif
    private var tasks: [(deadline: UInt64, task: () -> Void)] = []
    private let inbox = PThreadMutex<[@Sendable () -> Void]>([])
    private var running = false
    private let events: UnsafeMutablePointer<CSystem_Event>
    private let maxEvents = 1024

    /// The loop-wide read buffer: every connection reads into it, so idle connections hold none.
    public let readBuffer: UnsafeMutableRawBufferPointer
    /// Where many small queued frames are copied together for one `write` (see Connection.flush).
    public let writeBuffer: UnsafeMutableRawBufferPointer
    /// Scratch `iovec`s for gathered writes.
    let ioVectors: UnsafeMutablePointer<iovec>
    let ioVectorCapacity: Int

    /// The time at the start of this tick's event handling (ms, monotonic): cheap to read per event.
    public private(set) var now: UInt64

    /// For `/metrics`: readiness events handled and returns from epoll_wait. Written by this loop only,
    /// once per wake-up (see `add(fromOwner:)`), read by scrapes on any thread.
    let eventsHandled = Atomic<UInt64>(0)
    let wakeups = Atomic<UInt64>(0)

    public init(index: Int, readBufferSize: Int = 64 * 1024) throws(Errno) {
        self.index = index
        epollFD = try syscallBlocking("epoll_create1") { CSystem_epoll_create() }
        do {
            wakeFD = try syscallBlocking("eventfd") { CSystem_eventfd() }
        } catch {
            Glibc.close(epollFD)
            throw error
        }
        events = .allocate(capacity: maxEvents)
        readBuffer = .allocate(byteCount: readBufferSize, alignment: 16)
        writeBuffer = .allocate(byteCount: 64 * 1024, alignment: 16)
        ioVectorCapacity = Int(min(CSystem_IOV_MAX(), 1024))
        ioVectors = .allocate(capacity: ioVectorCapacity)
        now = MonotonicClock.milliseconds()
        try syscallBlocking("epoll_ctl") {
            CSystem_epoll_ctl(epollFD, CSystem_EPOLL_CTL_ADD(), wakeFD, UInt32(CSystem_EPOLLIN), UInt64(wakeFD))
        }
    }

    deinit {
        Glibc.close(wakeFD)
        Glibc.close(epollFD)
        events.deallocate()
        readBuffer.deallocate()
        writeBuffer.deallocate()
        ioVectors.deallocate()
    }

    // MARK: Registration

    public func register(fd: Int32, handler: EventHandler, events: UInt32) throws(Errno) {
        try syscallBlocking("epoll_ctl(ADD)") {
            CSystem_epoll_ctl(epollFD, CSystem_EPOLL_CTL_ADD(), fd, events, UInt64(fd))
        }
        handlers[fd] = handler
    }

    /// Changes what `fd` is watched for. It cannot fail for a registered descriptor; a failure means the
    /// descriptor is already gone, and its handler learns that from its next read or write.
    public func setInterest(fd: Int32, events: UInt32) {
        _ = try? syscall("epoll_ctl(MOD)") {
            CSystem_epoll_ctl(epollFD, CSystem_EPOLL_CTL_MOD(), fd, events, UInt64(fd))
        }
    }

    /// Forgets `fd`; call before closing it.
    public func deregister(fd: Int32) {
        _ = try? syscall("epoll_ctl(DEL)") { CSystem_epoll_ctl(epollFD, CSystem_EPOLL_CTL_DEL(), fd, 0, 0) }
        if let handler = handlers.removeValue(forKey: fd) {
            retired.append(handler)
            // After a peak, the storage is given back once the loop holds a small part of it (a dictionary
            // never shrinks by itself). Rebuilding costs O(count), paid after `capacity` removals at most.
            if handlers.capacity > 4096 && handlers.count < handlers.capacity / 16 {
                handlers = Dictionary(uniqueKeysWithValues: handlers.map { ($0.key, $0.value) })
            }
        }
    }

    /// Every registered handler (for shutdown).
    public var registeredHandlers: [EventHandler] { Array(handlers.values) }

    /// Copies the first `count` scratch iovecs, back to back, into `writeBuffer`, at most `limit` bytes.
    func gatherCopy(count: Int, limit: Int = .max) {
        var offset = 0
        let limit = min(limit, writeBuffer.count)
        for index in 0..<count where offset < limit {
            let vector = ioVectors[index]
            let length = min(vector.iov_len, limit - offset)
            (writeBuffer.baseAddress! + offset).copyMemory(from: vector.iov_base!, byteCount: length)
            offset += length
        }
    }

    // MARK: Timers and flushing

    /// Calls `handler.handleTimer(scheduled: entry.deadline)` at or after `deadline` (ms, monotonic), unless it is gone by then.
    public func schedule(at deadline: UInt64, fd: Int32, handler: EventHandler) {
        timers.push(.init(deadline: deadline, fd: fd, handlerID: handler.handlerID))
    }

    /// Runs `task` on this loop at or after `deadline`. For rare loop-wide work (drain checks, accept
    /// back-off), not per connection: the list is scanned each tick.
    public func schedule(at deadline: UInt64, task: @escaping () -> Void) {
        tasks.append((deadline, task))
    }

    private func runTasks() {
        guard !tasks.isEmpty else { return }
        var index = 0
        while index < tasks.count {
            if tasks[index].deadline <= now {
                let task = tasks.remove(at: index).task
                task()
            } else {
                index += 1
            }
        }
    }

    /// Queues `handler.flush()` for the end of this tick. The handler keeps its own "already dirty" flag.
    @inline(__always)
    public func markDirty(_ handler: EventHandler) {
        dirty.append(handler)
    }

    /// `markDirty` with an entry made once (`DirtyList.Entry(handler)`): no reference count per mark, which the
    /// fan-out path marks once per recipient.
    @inline(__always)
    func markDirty(_ entry: DirtyList.Entry) {
        dirty.append(entry)
    }

    /// Keeps `object` alive until the end of this tick's flush pass, so that many others can refer to it
    /// meanwhile without a reference count each (a fan-out frame queued on thousands of connections costs one
    /// reference, not thousands). The rule for those borrowers: each is marked dirty when it starts referring
    /// to kept-alive objects, and by the end of its `flush` it has dropped those references or taken its own.
    /// Debug builds check the rule: a borrower says `borrowOpened()` when it starts and `borrowSettled()` when it
    /// has settled, and the pass traps if any borrow is still open when it lets the objects go.
    @inline(__always)
    public func keepAlive(_ object: AnyObject) {
        keptAlive.append(object)
    }

    /// Debug builds: a borrower now refers to kept-alive objects without references (see `keepAlive`).
    @inline(__always)
    public func borrowOpened() {
        #if DEBUG
            openBorrows += 1
        #endif
    }

    /// Debug builds: a borrower no longer refers to kept-alive objects without references.
    @inline(__always)
    public func borrowSettled() {
        #if DEBUG
            openBorrows -= 1
            precondition(openBorrows >= 0, "a borrow was settled twice")
        #endif
    }

    // MARK: Cross-thread

    /// Runs `task` on the loop's thread soon. Safe from any thread.
    public func execute(_ task: @escaping @Sendable () -> Void) {
        inbox.withLock { $0.append(task) }
        var one: UInt64 = 1
        // EAGAIN means the counter is already non-zero: the loop is woken either way.
        _ = try? syscall("write(eventfd)") { withUnsafeBytes(of: &one) { Glibc.write(wakeFD, $0.baseAddress, 8) } }
    }

    /// Makes `run` return after the current tick. Safe from any thread.
    public func stop() {
        execute { [self] in running = false }
    }

    // MARK: Running

    /// Runs until `stop`. Must be called on the thread that will own the loop.
    public func run() {
        running = true
        while running {
            flushDirty()
            let timeout = nextTimeout()
            // EINTR is retried inside the wrapper; no other failure is possible with valid arguments.
            let result = try? syscall("epoll_wait") { CSystem_epoll_wait(epollFD, events, Int32(maxEvents), timeout) }
            now = MonotonicClock.milliseconds()
            wakeups.add(fromOwner: 1)
            if case .processed(let count) = result, count > 0 {
                eventsHandled.add(fromOwner: UInt64(count))
                for position in 0..<Int(count) {
                    let event = events[position]
                    let fd = Int32(truncatingIfNeeded: event.token)
                    if fd == wakeFD {
                        drainInbox()
                    } else if let handler = handlers[fd] {
                        handler.handleEvents(event.events)
                    }
                }
            }
            fireTimers()
            runTasks()
        }
        flushDirty()
    }

    private func nextTimeout() -> Int32 {
        var earliest = timers.earliest ?? UInt64.max
        for task in tasks { earliest = min(earliest, task.deadline) }
        guard earliest != UInt64.max else { return -1 }
        let current = MonotonicClock.milliseconds()
        if earliest <= current { return 0 }
        return Int32(clamping: earliest - current)
    }

    private func fireTimers() {
        while let entry = timers.popDue(now: now) {
            guard let handler = handlers[entry.fd],
                handler.handlerID == entry.handlerID
            else { continue }
            handler.handleTimer(scheduled: entry.deadline)
        }
    }

    private func flushDirty() {
        // A flush may mark more handlers dirty (e.g. a close frame queued on a write error): they join the
        // end of the list and are flushed in the same pass.
        var index = 0
        while index < dirty.count {
            dirty[index].flush()
            index += 1
        }
        dirty.removeAll()
        // Every borrower has now dropped its unretained references or taken its own (see `keepAlive`).
        #if DEBUG
            precondition(
                openBorrows == 0,
                "\(openBorrows) borrowers still refer to kept-alive objects at the end of a flush pass")
        #endif
        if !keptAlive.isEmpty { releaseKeptAlive() }
        // Nothing refers to a deregistered handler any more: let it go.
        if !retired.isEmpty { retired.removeAll() }
    }

    private func releaseKeptAlive() {
        // The list's storage is kept for the next tick unless a burst made it large.
        keptAlive.removeAll(keepingCapacity: keptAlive.capacity <= 1024)
    }

    private func drainInbox() {
        var counter: UInt64 = 0
        _ = try? syscall("read(eventfd)") {
            withUnsafeMutableBytes(of: &counter) { Glibc.read(wakeFD, $0.baseAddress, 8) }
        }
        let tasks = inbox.withLock { tasks in
            let taken = tasks
            tasks.removeAll()
            return taken
        }
        for task in tasks { task() }
    }
}

/// A process-wide source of handler ids.
enum HandlerIDs {
    private static let next = Atomic<UInt64>(1)
    static func make() -> UInt64 { next.add(1, ordering: .relaxed).oldValue }
}
