import Glibc
import Synchronization

@testable import Philote

// Helpers for tests that drive an `EventLoop` by hand (EventLoopTests, ConnectionTests): ticks on the test's
// own thread, socket pairs, and bounded waits that never guess at timing.

/// Runs one tick of `loop` on this thread: its flush pass, one wait (woken at once by `stop`), the tick's
/// events, timers and tasks, and the closing flush pass.
func tickOnce(_ loop: EventLoop) {
    loop.stop()
    loop.run()
}

/// A connected AF_UNIX stream pair, both ends non-blocking. The caller closes them.
func nonBlockingSocketPair() -> (Int32, Int32) {
    var fds: [Int32] = [0, 0]
    precondition(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &fds) == 0)
    for fd in fds { _ = fcntl(fd, F_SETFL, O_NONBLOCK) }
    return (fds[0], fds[1])
}

/// A one-shot signal between threads over a pipe, so that a wait can be bounded with `poll`.
final class PipeSignal: Sendable {
    private let readEnd: Int32
    private let writeEnd: Int32

    init() {
        var ends: [Int32] = [0, 0]
        precondition(pipe(&ends) == 0)
        (readEnd, writeEnd) = (ends[0], ends[1])
    }

    deinit {
        close(readEnd)
        close(writeEnd)
    }

    func signal() {
        var byte: UInt8 = 1
        _ = write(writeEnd, &byte, 1)
    }

    /// Waits until signalled, at most `milliseconds`; true when the signal came.
    func wait(milliseconds: Int32) -> Bool {
        var poller = pollfd(fd: readEnd, events: Int16(POLLIN), revents: 0)
        while true {
            let result = poll(&poller, 1, milliseconds)
            if result < 0 && errno == EINTR { continue }
            return result > 0
        }
    }
}

/// A flag shared with another thread.
final class SharedFlag: Sendable {
    private let value = Atomic<Bool>(false)
    func set() { value.store(true, ordering: .releasing) }
    var isSet: Bool { value.load(ordering: .acquiring) }
}

/// Runs `loop` on this thread until something in it calls `stop`. A watchdog thread stops it after `limit`
/// milliseconds instead, so that a broken loop fails the test rather than hanging it: returns false then.
func runUntilStopped(_ loop: EventLoop, limit: Int32 = 10_000) -> Bool {
    let finished = PipeSignal()
    let watchdogFired = SharedFlag()
    LoopGroup.spawnDetached {
        if !finished.wait(milliseconds: limit) {
            watchdogFired.set()
            loop.stop()
        }
    }
    loop.run()
    finished.signal()
    return !watchdogFired.isSet
}
