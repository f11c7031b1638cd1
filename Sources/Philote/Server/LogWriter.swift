#if canImport(Glibc)
    import Glibc
#endif

/// Writes log lines without ever stalling the caller (an event loop) on a log reader that stopped reading (a full
/// pipe to a stalled log collector, a terminal on pause). A line goes out at once when nothing waits before it and
/// the output says it has room (poll), as it almost always does: then the log is as immediate as a plain write.
/// Otherwise it joins a bounded buffer that a thread of its own writes. Past `capacity` unwritten bytes, lines are
/// dropped and counted, and a line saying how many comes out once the output moves again.
final class LogWriter: @unchecked Sendable {
    /// The process's log: stderr.
    static let standardError = LogWriter(fd: 2)

    let fd: Int32
    let capacity: Int
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let changed = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    // Guarded by `mutex`.
    private var pending: [UInt8] = []
    private var dropped = 0
    private var droppedSinceStart = 0
    private var writing = false
    private var started = false
    /// The format of the last line queued, for the notice about dropped lines.
    private var format = LogFormat.text

    init(fd: Int32, capacity: Int = 1 << 20) {
        self.fd = fd
        self.capacity = capacity
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(changed, nil)
    }

    /// Queues one whole line (or drops it, counted, when `capacity` bytes already wait); never blocks on the
    /// output.
    func write(_ line: [UInt8], format: LogFormat = .text) {
        pthread_mutex_lock(mutex)
        self.format = format
        // A line of at most PIPE_BUF bytes into an output with room (a pipe with a free buffer, a socket with
        // space, a file) is written whole without blocking. Under the lock, so that it cannot pass queued lines.
        if pending.isEmpty && !writing && dropped == 0 && line.count <= Int(PIPE_BUF) && hasRoom() {
            writeAll(line)
            pthread_mutex_unlock(mutex)
            return
        }
        if pending.count + line.count > capacity {
            dropped += 1
            droppedSinceStart += 1
        } else {
            pending.append(contentsOf: line)
        }
        if !started {
            started = true
            LoopGroup.spawnDetached { [self] in drain() }
        }
        pthread_cond_broadcast(changed)
        pthread_mutex_unlock(mutex)
    }

    /// Lines dropped since the writer was made.
    var droppedLines: Int {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return droppedSinceStart
    }

    /// Waits until everything queued is written, or `milliseconds` pass (an output that never moves must not
    /// keep the process from exiting). True when all was written.
    @discardableResult
    func flush(milliseconds: Int) -> Bool {
        var deadline = timespec()
        clock_gettime(CLOCK_REALTIME, &deadline)
        let nanoseconds = deadline.tv_nsec + (milliseconds % 1000) * 1_000_000
        deadline.tv_sec += milliseconds / 1000 + nanoseconds / 1_000_000_000
        deadline.tv_nsec = nanoseconds % 1_000_000_000
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        while !pending.isEmpty || writing || dropped > 0 {
            if pthread_cond_timedwait(changed, mutex, &deadline) == ETIMEDOUT { return false }
        }
        return true
    }

    private func drain() {
        pthread_mutex_lock(mutex)
        while true {
            while pending.isEmpty && dropped == 0 { pthread_cond_wait(changed, mutex) }
            var batch = pending
            pending = []
            if dropped > 0 {
                let notice = Logger.line(
                    format, time: Logger.timestamp(), level: .warning,
                    message: "log lines dropped: the log output was not taking them", ["lines": String(dropped)])
                batch.append(contentsOf: notice.utf8)
                dropped = 0
            }
            writing = true
            pthread_mutex_unlock(mutex)
            writeAll(batch)
            pthread_mutex_lock(mutex)
            writing = false
            pthread_cond_broadcast(changed)
        }
    }

    private func hasRoom() -> Bool {
        var output = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
        return poll(&output, 1, 0) == 1 && output.revents & Int16(POLLOUT) != 0
    }

    private func writeAll(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { buffer in
            var offset = 0
            while offset < buffer.count {
                let written = Glibc.write(fd, buffer.baseAddress! + offset, buffer.count - offset)
                if written > 0 {
                    offset += written
                } else if written < 0 && errno == EINTR {
                    continue
                } else {
                    return  // the output is gone (closed, an error): nothing more can be said there
                }
            }
        }
    }
}
