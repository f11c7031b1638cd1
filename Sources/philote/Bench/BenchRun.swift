import Philote

#if canImport(Glibc)
    import Glibc
#endif

/// The coordinator of a bench run, on the main thread: starts the loops, moves the run through its phases,
/// prints progress and the live line from copies of the loops' figures, and builds the report. It never
/// touches a connection: it asks each loop through `execute`.
final class BenchRun {
    /// A connect phase that makes no progress for this long ends with what is open.
    static let connectStallSeconds = 10.0

    private let plan: BenchPlan
    private let json: Bool
    private let group: LoopGroup
    private let workers: [BenchWorker]
    private let signals: SignalWatcher?
    private let stderrIsTerminal = isatty(2) == 1
    private var generation: UInt64 = 0
    private var interrupted = false
    private var settings: BenchSettings { plan.settings }

    init(plan: BenchPlan, json: Bool) throws(BenchFailure) {
        self.plan = plan
        self.json = json
        do {
            group = try LoopGroup(count: plan.settings.workers)
        } catch {
            throw BenchFailure("cannot create event loops: \(error)", status: 1)
        }
        workers = group.loops.map { BenchWorker(index: $0.index, loop: $0, plan: plan) }
        signals = SignalWatcher()
    }

    func run() -> Int32 {
        group.start()
        let connectStart = BenchClock.nanoseconds()
        var snapshots = connect(.subscriber, count: settings.subscribers)
        if !interrupted { snapshots = connect(.publisher, count: settings.publishers) }
        let connectSeconds = seconds(since: connectStart)
        let tally = Self.total(snapshots).tally
        if !interrupted {
            if settings.subscribers > 0 && tally.subscribersOpen == 0 {
                BenchCommand.say("no subscriber could connect: \(tally.firstFailure ?? "no answer")")
                return 1
            }
            if tally.publishersOpen == 0 {
                BenchCommand.say("no publisher could connect: \(tally.firstFailure ?? "no answer")")
                return 1
            }
        }
        var fans = [Int](repeating: 0, count: settings.channels)
        for snapshot in snapshots {
            for channel in fans.indices { fans[channel] += snapshot.subscribersOpen[channel] }
        }
        var windowStart = BenchClock.nanoseconds()
        var windowEnd = windowStart
        if !interrupted {
            plan.shared.enter(.warmup)
            for worker in workers {
                let fansCopy = fans
                worker.loop.execute { worker.startPublishing(fans: fansCopy) }
            }
            report(for: settings.warmup, measuring: false)
            windowStart = BenchClock.nanoseconds()
            if !interrupted {
                plan.shared.startMeasuring(at: windowStart)
                report(for: settings.duration, measuring: true)
            }
            windowEnd = BenchClock.nanoseconds()
            plan.shared.enter(.draining)
            if plan.shared.isMeasured(sentAt: windowStart) || windowEnd > windowStart { drain(fans: fans) }
        }
        let final = collect(final: true)
        let result = Self.total(final)
        let report = accounting(final, fans: fans, tally: result.tally, latency: result.latency,
            connectSeconds: connectSeconds, measuredSeconds: Double(windowEnd - windowStart) / 1e9)
        POSIXIO.writeAll(1, Array((json ? report.json() : report.table()).utf8))
        return interrupted ? 130 : 0
    }

    // MARK: Phases

    /// Opens `count` connections of `role`, dealt round-robin over the loops, with a progress line.
    private func connect(_ role: BenchConnection.Role, count: Int) -> [BenchSnapshot] {
        let name = role == .subscriber ? "subscribers" : "publishers"
        for worker in workers {
            let indices = Array(stride(from: worker.index, to: count, by: workers.count))
            worker.loop.execute { worker.open(role, indices: indices) }
        }
        let start = BenchClock.nanoseconds()
        var lastSettled = -1
        var lastProgress = start
        var lastPrinted: UInt64 = 0
        while true {
            let snapshots = collect(final: false)
            let tally = Self.total(snapshots).tally
            let settled = snapshots.reduce(0) {
                $0 + (role == .subscriber ? $1.subscribersSettled : $1.publishersSettled)
            }
            let open = role == .subscriber ? tally.subscribersOpen : tally.publishersOpen
            let now = BenchClock.nanoseconds()
            if settled != lastSettled {
                lastSettled = settled
                lastProgress = now
            }
            let done = settled >= count || interrupted
                || Double(now - lastProgress) / 1e9 > Self.connectStallSeconds
            if done || stderrIsTerminal || now - lastPrinted >= 1_000_000_000 {
                lastPrinted = now
                let elapsed = seconds(since: start)
                let rate = elapsed > 0 ? Double(open) / elapsed : 0
                let line = "connecting \(name): \(open)/\(count) open, \(tally.connectFailures) failed, "
                    + "\(BenchReport.fixed(rate, 0))/s"
                progress(line, final: done)
            }
            if done { return snapshots }
            if pause(milliseconds: 100) { interrupted = true }
        }
    }

    /// Publishes for `duration`, with the live line every second.
    private func report(for duration: UInt64, measuring: Bool) {
        let start = BenchClock.nanoseconds()
        var previous = Self.total(collect(final: false)).tally
        var previousTime = start
        while !interrupted {
            let now = BenchClock.nanoseconds()
            if now - start >= duration { return }
            let wait = min(1_000_000_000 - (now - start) % 1_000_000_000, duration - (now - start))
            if pause(milliseconds: Int32((wait + 999_999) / 1_000_000)) {
                interrupted = true
                return
            }
            // The window ends on time: the table follows at once, so no live line for its last second.
            if BenchClock.nanoseconds() - start >= duration { return }
            let total = Self.total(collect(final: false))
            let time = BenchClock.nanoseconds()
            let interval = Double(time - previousTime) / 1e9
            let line = BenchReport.liveLine(
                elapsed: Double(time - start) / 1e9, measuring: measuring,
                connections: total.tally.subscribersOpen + total.tally.publishersOpen
                    - Int(total.tally.closeCodes.values.reduce(0, +)),
                publishedPerSecond: Double(total.tally.published - previous.published) / interval,
                deliveredPerSecond: Double(total.tally.delivered - previous.delivered) / interval,
                latency: total.latency, errors: total.tally.errors, backlog: total.tally.backlog)
            BenchCommand.say(line)
            previous = total.tally
            previousTime = time
        }
    }

    /// Waits (up to --drain) for the deliveries the window's publishes call for.
    private func drain(fans: [Int]) {
        let start = BenchClock.nanoseconds()
        while BenchClock.nanoseconds() - start < settings.drain {
            let snapshots = collect(final: false)
            let expected = Self.expectedDeliveries(snapshots, fans: fans, settings: settings)
            if Self.total(snapshots).tally.deliveredMeasured >= expected { return }
            if pause(milliseconds: 20) {
                // A second Ctrl-C: stop waiting, report now.
                interrupted = true
                return
            }
        }
    }

    // MARK: Figures

    private func accounting(
        _ snapshots: [BenchSnapshot], fans: [Int], tally: BenchTally, latency: LatencyHistogram,
        connectSeconds: Double, measuredSeconds: Double
    ) -> BenchReport {
        var sent = [UInt64](repeating: 0, count: settings.streams)
        for snapshot in snapshots {
            for (publisher, count) in snapshot.measuredSent { sent[publisher] += count }
        }
        var expected: UInt64 = 0
        var lost: UInt64 = 0
        var duplicates: UInt64 = 0
        for snapshot in snapshots {
            for subscriber in snapshot.trackers {
                for (slot, tracker) in subscriber.trackers.enumerated() {
                    let publisher = subscriber.channel + slot * settings.channels
                    expected += sent[publisher]
                    lost += tracker.lost(ofSent: sent[publisher])
                    duplicates += tracker.duplicates
                }
            }
        }
        return BenchReport(
            url: plan.url.description, settings: settings, tally: tally, latency: latency,
            connectSeconds: connectSeconds, measuredSeconds: measuredSeconds, expected: expected, lost: lost,
            duplicates: duplicates, interrupted: interrupted)
    }

    static func expectedDeliveries(_ snapshots: [BenchSnapshot], fans: [Int], settings: BenchSettings) -> UInt64 {
        var expected: UInt64 = 0
        for snapshot in snapshots {
            for (publisher, count) in snapshot.measuredSent {
                expected += count * UInt64(fans[settings.channel(of: publisher)])
            }
        }
        return expected
    }

    static func total(_ snapshots: [BenchSnapshot]) -> (tally: BenchTally, latency: LatencyHistogram) {
        var tally = BenchTally()
        var latency = LatencyHistogram()
        for snapshot in snapshots {
            tally.add(snapshot.tally)
            latency.merge(snapshot.latency)
        }
        return (tally, latency)
    }

    /// Every loop's figures as of now (a loop that does not answer within a second gives its last copy).
    private func collect(final: Bool) -> [BenchSnapshot] {
        generation += 1
        let wanted = generation
        for worker in workers {
            worker.loop.execute { worker.snapshot(generation: wanted, final: final) }
        }
        let deadline = BenchClock.nanoseconds() + 1_000_000_000
        while true {
            let snapshots = workers.compactMap { worker in worker.slot.withLock { $0 } }
            let fresh = snapshots.count == workers.count && snapshots.allSatisfy { $0.generation == wanted }
            if fresh || BenchClock.nanoseconds() > deadline { return snapshots }
            var pause = timespec(tv_sec: 0, tv_nsec: 200_000)
            nanosleep(&pause, nil)
        }
    }

    // MARK: Terminal

    /// Waits up to `milliseconds`; true when Ctrl-C (or SIGTERM) arrived.
    private func pause(milliseconds: Int32) -> Bool {
        guard let signals else {
            var pause = timespec(tv_sec: Int(milliseconds / 1000), tv_nsec: Int(milliseconds % 1000) * 1_000_000)
            nanosleep(&pause, nil)
            return false
        }
        if POSIXIO.wait(signals.fd, for: Int16(POLLIN), milliseconds: milliseconds) & Int16(POLLIN) != 0 {
            return signals.drain() > 0
        }
        return false
    }

    /// A progress line: rewritten in place on a terminal, one line per second otherwise.
    private func progress(_ line: String, final: Bool) {
        if stderrIsTerminal {
            POSIXIO.writeAll(2, Array("\r\u{1B}[Kphilote bench: \(line)\(final ? "\n" : "")".utf8))
        } else {
            BenchCommand.say(line)
        }
    }

    private func seconds(since start: UInt64) -> Double { Double(BenchClock.nanoseconds() - start) / 1e9 }
}
