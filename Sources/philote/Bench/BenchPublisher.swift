import Philote

/// The publishing side of one publisher connection. At a fixed rate, a timer on the loop takes the messages
/// due on the open-loop schedule and queues them whether or not the server reads (so a stalled server shows
/// as latency and backlog, not as a lower offered rate). At `--rate max`, it keeps `--window` messages in
/// flight, woken by the loops that count their deliveries.
final class BenchPublisher {
    /// Due messages are dropped (counted as backlog) once this much waits unsent: the server is not reading.
    static let maxQueuedBytes = 8 << 20
    /// `--rate max`: a window without a delivery for this long is written off, as the harness does, so
    /// that a server that drops messages cannot stop the run.
    static let stallMilliseconds: UInt64 = 1000

    /// The stream: its number in stamps, gauges and counts.
    let index: Int
    let channel: Int
    unowned(unsafe) let connection: BenchConnection
    unowned(unsafe) let worker: BenchWorker
    let gauge: BenchPublisherGauge
    private var writer: BenchFrameWriter
    private var sequence: UInt64 = 0
    private var sent: UInt64 = 0
    private(set) var measuredSent: UInt64 = 0
    /// Deliveries expected for each message: the open subscribers of the channel.
    private var fan: UInt64 = 0
    private var schedule: FixedRateSchedule?
    private var started = false
    private var writtenOff: UInt64 = 0
    private var lastDone: UInt64 = 0
    private var lastProgress: UInt64 = 0
    /// The deadline of this stream's entry in the loop's timers (`.max`: none). The entries are the connection's,
    /// which several streams may share, so each fires only the streams whose own deadline has come: otherwise
    /// every firing would re-arm every stream, and the timers would multiply.
    private var armedAt: UInt64 = .max

    init(stream: Int, connection: BenchConnection, worker: BenchWorker) {
        index = stream
        channel = worker.plan.settings.channel(of: stream)
        self.connection = connection
        self.worker = worker
        gauge = worker.plan.gauges[stream]
        writer = BenchFrameWriter(
            channel: BenchSettings.channelName(channel), dataSize: worker.plan.settings.size,
            seed: BenchClock.nanoseconds() ^ UInt64(stream) &* 0x9E37_79B9_7F4A_7C15)
    }

    private var settings: BenchSettings { worker.plan.settings }

    /// Publishing begins (on the connection's loop), `fan` deliveries expected per message.
    func start(fan: Int) {
        guard !started else { return }
        started = true
        self.fan = UInt64(fan)
        let loop = worker.loop
        gauge.loop = loop
        gauge.wake = { [unowned(unsafe) self] in self.pump() }
        lastProgress = loop.now
        switch settings.rate {
        case .fixed(let rate):
            let interval = UInt64(1e9 * Double(settings.streams) / rate)
            // Streams are spread over the interval, not all due at the same instant.
            let offset = interval / UInt64(settings.streams) * UInt64(index)
            schedule = FixedRateSchedule(interval: interval, start: BenchClock.nanoseconds() + offset)
            timerFired()
        case .max:
            pump()
            arm(after: 100)
        }
    }

    private var publishing: Bool {
        let phase = worker.plan.shared.phase
        return started && connection.state == .open && (phase == .warmup || phase == .measuring)
    }

    func timerFired() {
        guard publishing else { return }
        if var schedule {
            let due = schedule.due(at: BenchClock.nanoseconds())
            self.schedule = schedule
            if due > 0 { send(due) }
            // Millisecond timers: messages due within the next millisecond go with the next tick.
            let nextMilliseconds = (schedule.nextDue + 999_999) / 1_000_000
            arm(at: nextMilliseconds)
        } else {
            checkStall()
            pump()
            arm(after: fan == 0 ? 1 : 100)
        }
    }

    private func arm(after milliseconds: UInt64) {
        arm(at: worker.loop.now + milliseconds)
    }

    private func arm(at deadline: UInt64) {
        guard deadline < armedAt else { return }
        armedAt = deadline
        worker.loop.schedule(at: deadline, fd: connection.fd, handler: connection)
    }

    /// The connection's timer entry for `scheduled` fired: this stream's turn if its deadline has come.
    func timerFired(scheduled: UInt64) {
        guard scheduled >= armedAt else { return }
        armedAt = .max
        timerFired()
    }

    /// The socket took everything queued: at --rate max, the next window may go.
    func writable() {
        if schedule == nil { pump() }
    }

    /// `--rate max`: sends while the window has room; otherwise waits for a loop to count deliveries.
    func pump() {
        while publishing && schedule == nil && connection.pendingOutput == 0 {
            let window = UInt64(settings.window)
            if fan == 0 {
                // Nobody reads the channel: a window per millisecond tick, so publishing is still exercised.
                send(window)
                return
            }
            let delivered = gauge.delivered
            let done = delivered + writtenOff
            let expected = sent * fan
            let inFlight = expected > done ? expected - done : 0
            let capacity = window * fan
            if inFlight < capacity {
                send(Swift.min(window, (capacity - inFlight + fan - 1) / fan))
                continue
            }
            // Full: ask the counting loops for a wake-up, then look once more, in case the deliveries that
            // make room were counted between the read above and the flag.
            gauge.waiting.store(true, ordering: .sequentiallyConsistent)
            if gauge.delivered == delivered { return }
            if !gauge.waiting.exchange(false, ordering: .sequentiallyConsistent) { return }
        }
    }

    private func checkStall() {
        let done = gauge.delivered + writtenOff
        let now = worker.loop.now
        if done != lastDone {
            lastDone = done
            lastProgress = now
            return
        }
        let expected = sent * fan
        guard expected > done, now - lastProgress >= Self.stallMilliseconds else { return }
        writtenOff += expected - done
        lastDone = done + (expected - done)
        lastProgress = now
        worker.tally.stalls += 1
    }

    /// Queues `count` messages stamped now and writes them.
    private func send(_ count: UInt64) {
        let now = BenchClock.nanoseconds()
        let measured = worker.plan.shared.isMeasured(sentAt: now)
        let compressing = connection.deflating
        var written: UInt64 = 0
        while written < count && connection.pendingOutput < Self.maxQueuedBytes {
            let stamp = BenchStamp(sentAt: now, measured: measured, sequence: sequence, publisher: UInt64(index))
            if compressing {
                writer.appendCompressed(stamp, with: worker.deflater, to: &connection.outbound)
            } else {
                writer.append(stamp, to: &connection.outbound)
            }
            sequence += 1
            written += 1
        }
        sent += written
        worker.tally.published += written
        if compressing && measured { worker.tally.publishedCompressed += written }
        if measured {
            measuredSent += written
            worker.tally.publishedMeasured += written
        }
        if written < count { worker.tally.backlog += count - written }
        connection.flushOutbound()
    }
}
