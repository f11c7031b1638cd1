import CSystem
import Glibc
import Synchronization
import Testing

@testable import Philote

/// What the probes and tasks of one test did, in order.
private final class Journal {
    var entries: [String] = []
    /// (probe, deadline) for every timer that fired.
    var timers: [(String, UInt64)] = []
}

/// A handler that writes down its timers and flushes. Like a connection it keeps its own dirty flag, so that it
/// is in a pass once however often it is marked.
private final class Probe: EventHandler {
    let handlerID = HandlerIDs.make()
    let name: String
    let journal: Journal
    unowned let loop: EventLoop
    var onFlush: (() -> Void)?
    var onTimer: (() -> Void)?
    /// `loop.now` each time a timer fired.
    private(set) var timerNows: [UInt64] = []
    private var isDirty = false

    init(_ name: String, _ journal: Journal, _ loop: EventLoop) {
        self.name = name
        self.journal = journal
        self.loop = loop
    }

    func markDirty() {
        guard !isDirty else { return }
        isDirty = true
        loop.markDirty(self)
    }

    func handleEvents(_ events: UInt32) { journal.entries.append("\(name) events") }

    func handleTimer(scheduled: UInt64) {
        journal.timers.append((name, scheduled))
        timerNows.append(loop.now)
        onTimer?()
    }

    func flush() {
        isDirty = false
        journal.entries.append("\(name) flush")
        onFlush?()
    }
}

private final class Token {}

private let readable = UInt32(CSystem_EPOLLIN)

@Suite struct EventLoopTests {
    // MARK: Timers

    /// Due timers fire in deadline order, whatever the order they were set in and whichever handler they are for;
    /// one not due yet does not fire; none fires twice.
    @Test func dueTimersFireInDeadlineOrderOnce() throws {
        let loop = try EventLoop(index: 0)
        let journal = Journal()
        let (a, b) = nonBlockingSocketPair()
        defer { close(a); close(b) }
        let first = Probe("first", journal, loop)
        let second = Probe("second", journal, loop)
        try loop.register(fd: a, handler: first, events: readable)
        try loop.register(fd: b, handler: second, events: readable)
        let base = loop.now
        loop.schedule(at: base - 10, fd: b, handler: second)
        loop.schedule(at: base - 30, fd: a, handler: first)
        loop.schedule(at: base + 3_600_000, fd: a, handler: first)
        loop.schedule(at: base - 20, fd: a, handler: first)
        loop.schedule(at: base - 5, fd: a, handler: first)

        tickOnce(loop)
        let expected = ["first -30", "first -20", "second -10", "first -5"]
        #expect(journal.timers.map { "\($0.0) \(Int64($0.1) - Int64(base))" } == expected)
        tickOnce(loop)
        tickOnce(loop)
        #expect(journal.timers.count == expected.count, "fired once each, and the one an hour away not at all")
        loop.deregister(fd: a)
        loop.deregister(fd: b)
    }

    /// A deadline in the near future: the loop's wait ends by itself when it is due (no event, no stop), and the
    /// timer sees a `now` at or after its deadline.
    @Test func aTimerFiresWhenItsDeadlineComesAndNotBefore() throws {
        let loop = try EventLoop(index: 0)
        let journal = Journal()
        let (a, b) = nonBlockingSocketPair()
        defer { close(a); close(b) }
        let probe = Probe("probe", journal, loop)
        try loop.register(fd: a, handler: probe, events: readable)
        let deadline = MonotonicClock.milliseconds() + 20
        loop.schedule(at: deadline, fd: a, handler: probe)
        probe.onTimer = { loop.stop() }

        #expect(runUntilStopped(loop), "the timer's deadline ended the wait")
        #expect(probe.timerNows.count == 1)
        #expect(probe.timerNows.allSatisfy { $0 >= deadline })
        #expect(journal.timers.map(\.1) == [deadline])
        loop.deregister(fd: a)
    }

    /// A timer whose handler was deregistered is dropped when it comes due.
    @Test func aTimerForADeregisteredHandlerDoesNotFire() throws {
        let loop = try EventLoop(index: 0)
        let journal = Journal()
        let (a, b) = nonBlockingSocketPair()
        defer { close(a); close(b) }
        let gone = Probe("gone", journal, loop)
        let staying = Probe("staying", journal, loop)
        try loop.register(fd: a, handler: gone, events: readable)
        try loop.register(fd: b, handler: staying, events: readable)
        let base = loop.now
        loop.schedule(at: base - 2, fd: a, handler: gone)
        loop.schedule(at: base - 1, fd: b, handler: staying)
        loop.deregister(fd: a)

        tickOnce(loop)
        #expect(journal.timers.map(\.0) == ["staying"])
        loop.deregister(fd: b)
    }

    /// A descriptor number reused by another handler does not inherit the old handler's timers: entries name the
    /// handler's id, not just the descriptor.
    @Test func aTimerDoesNotFireForAnotherHandlerOnAReusedDescriptor() throws {
        let loop = try EventLoop(index: 0)
        let journal = Journal()
        let (a, b) = nonBlockingSocketPair()
        defer { close(a); close(b) }
        let old = Probe("old", journal, loop)
        let new = Probe("new", journal, loop)
        try loop.register(fd: a, handler: old, events: readable)
        let base = loop.now
        loop.schedule(at: base - 3, fd: a, handler: old)
        loop.deregister(fd: a)
        try loop.register(fd: a, handler: new, events: readable)
        loop.schedule(at: base - 1, fd: a, handler: new)

        tickOnce(loop)
        #expect(journal.timers.map { "\($0.0) \(Int64($0.1) - Int64(base))" } == ["new -1"])
        #expect(old.timerNows.isEmpty && new.timerNows.count == 1)
        loop.deregister(fd: a)
    }

    // MARK: Tasks

    /// Loop tasks run once, in the order they were scheduled, in the first tick at or after their deadline.
    @Test func scheduledTasksRunOnceWhenDue() throws {
        let loop = try EventLoop(index: 0)
        var ran: [String] = []
        let base = loop.now
        loop.schedule(at: base + 3_600_000) { ran.append("in an hour") }
        loop.schedule(at: base - 1) { ran.append("past") }
        loop.schedule(at: base) { ran.append("now") }
        loop.schedule(at: 0) { ran.append("long past") }
        tickOnce(loop)
        #expect(ran == ["past", "now", "long past"])
        tickOnce(loop)
        #expect(ran == ["past", "now", "long past"])
    }

    /// The loop's wait ends by itself for a task's deadline too, and the task sees a `now` at or after it.
    @Test func aTaskDeadlineEndsTheWait() throws {
        let loop = try EventLoop(index: 0)
        let deadline = MonotonicClock.milliseconds() + 20
        var ranAt: [UInt64] = []
        loop.schedule(at: deadline) {
            ranAt.append(loop.now)
            loop.stop()
        }
        #expect(runUntilStopped(loop))
        #expect(ranAt.count == 1)
        #expect(ranAt.allSatisfy { $0 >= deadline })
    }

    // MARK: Cross-thread

    /// `execute` from another thread wakes a loop that waits with no deadline at all, and runs the task on the
    /// loop's thread.
    @Test func executeFromAnotherThreadWakesTheLoopAndRunsOnItsThread() throws {
        let loop = try EventLoop(index: 0)
        let threads = ThreadRecord()
        let stopped = PipeSignal()
        let firstRan = PipeSignal()
        LoopGroup.spawnDetached {
            threads.loopThread.store(UInt(pthread_self()), ordering: .releasing)
            loop.run()
            stopped.signal()
        }
        loop.execute {
            threads.taskThreads.withLock { $0.append(UInt(pthread_self())) }
            firstRan.signal()
        }
        try #require(firstRan.wait(milliseconds: 10_000), "the first task ran")
        // The loop has no timers and no tasks: it waits in epoll_wait with no timeout until woken.
        loop.execute {
            threads.taskThreads.withLock { $0.append(UInt(pthread_self())) }
            loop.stop()
        }
        try #require(stopped.wait(milliseconds: 10_000), "the second task woke the loop and stopped it")
        let owner = threads.loopThread.load(ordering: .acquiring)
        #expect(owner != 0 && owner != UInt(pthread_self()))
        #expect(threads.taskThreads.withLock { $0 } == [owner, owner])
    }

    // MARK: Flush pass

    /// Handlers are flushed in the order they were marked, once per pass; one marked during the pass (by another's
    /// flush) is flushed in that same pass, before the tick goes on.
    @Test func dirtyHandlersAreFlushedInMarkOrderAndLateMarksJoinThePass() throws {
        let loop = try EventLoop(index: 0)
        let journal = Journal()
        let a = Probe("a", journal, loop)
        let b = Probe("b", journal, loop)
        let c = Probe("c", journal, loop)
        let late = Probe("late", journal, loop)
        a.onFlush = { late.markDirty() }
        c.markDirty()
        a.markDirty()
        b.markDirty()
        c.markDirty()
        // Tasks run between a tick's events and its closing pass: this one marks where the opening pass ended.
        loop.schedule(at: 0) { journal.entries.append("tasks") }

        tickOnce(loop)
        #expect(journal.entries == ["c flush", "a flush", "b flush", "late flush", "tasks"])
        tickOnce(loop)
        #expect(journal.entries.count == 5, "the list is emptied by the pass")

        // Marked in the middle of a tick: flushed in that tick's closing pass.
        loop.schedule(at: 0) {
            journal.entries.append("tasks")
            b.markDirty()
        }
        tickOnce(loop)
        #expect(Array(journal.entries.dropFirst(5)) == ["tasks", "b flush"])
    }

    /// `keepAlive` holds an object through the rest of the tick and the flush pass that ends it (the flushes see
    /// it), and lets it go when that pass ends.
    @Test func keepAliveLastsUntilTheEndOfTheFlushPass() throws {
        let loop = try EventLoop(index: 0)
        let journal = Journal()
        let probe = Probe("probe", journal, loop)
        weak var kept: Token?
        var seenInFlush: [Bool] = []
        probe.onFlush = { seenInFlush.append(kept != nil) }
        do {
            let token = Token()
            kept = token
            loop.keepAlive(token)
        }
        #expect(kept != nil)
        probe.markDirty()
        tickOnce(loop)
        #expect(seenInFlush == [true])
        #expect(kept == nil, "released when the pass ended")

        // Kept alive in the middle of a tick (a delivery from a task or an event): alive in that tick's closing
        // pass, gone after it.
        loop.schedule(at: 0) {
            let token = Token()
            kept = token
            loop.keepAlive(token)
            probe.markDirty()
        }
        tickOnce(loop)
        #expect(seenInFlush == [true, true])
        #expect(kept == nil)
    }

    /// A handler deregistered while it is in the flush list is still alive, and still flushed, when its turn
    /// comes in that pass; it is let go when the pass ends.
    @Test func aHandlerDeregisteredDuringThePassLivesUntilItsEnd() throws {
        let loop = try EventLoop(index: 0)
        let journal = Journal()
        let (a, b) = nonBlockingSocketPair()
        defer { close(a); close(b) }
        let closer = Probe("closer", journal, loop)
        closer.markDirty()
        weak var victim: Probe?
        do {
            let probe = Probe("victim", journal, loop)
            victim = probe
            try loop.register(fd: a, handler: probe, events: readable)
            probe.markDirty()
        }
        #expect(victim != nil, "held by the loop's table alone")
        var aliveAfterDeregister: Bool?
        closer.onFlush = {
            loop.deregister(fd: a)
            aliveAfterDeregister = victim != nil
        }
        tickOnce(loop)
        #expect(aliveAfterDeregister == true)
        #expect(journal.entries == ["closer flush", "victim flush"])
        #expect(victim == nil, "let go when the pass ended")
    }

    /// A handler deregistered outside a pass (on a read, say) is let go by the next pass.
    @Test func aHandlerDeregisteredBetweenPassesLivesUntilTheNextPassEnds() throws {
        let loop = try EventLoop(index: 0)
        let journal = Journal()
        let (a, b) = nonBlockingSocketPair()
        defer { close(a); close(b) }
        weak var victim: Probe?
        do {
            let probe = Probe("victim", journal, loop)
            victim = probe
            try loop.register(fd: a, handler: probe, events: readable)
        }
        loop.deregister(fd: a)
        #expect(victim != nil)
        #expect(loop.registeredHandlers.isEmpty)
        tickOnce(loop)
        #expect(victim == nil)
    }
}

/// Which threads ran what, written by the loop's thread.
private final class ThreadRecord: Sendable {
    let loopThread = Atomic<UInt>(0)
    let taskThreads = Mutex<[UInt]>([])
}
