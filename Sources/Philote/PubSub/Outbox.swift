/// What one loop has published this tick for the other loops; shipped in the loop's before-sleep pass.
final class Outbox: EventHandler, @unchecked Sendable {
    let handlerID = HandlerIDs.make()
    private let origin: EventLoop
    private let loops: [EventLoop]
    private let locals: [LocalHub]
    /// One per loop, shared by every origin: what each loop has been handed and not yet run.
    private let budgets: [HandOffBudget]
    /// The origin loop's counters (it alone writes them).
    private let metrics: LoopMetrics
    private var pending: [Parcel] = []
    /// Submissions to other loops (history on), by loop index; each list is sent with that loop's parcels.
    private var submissions: [[Submission]]
    private var submitting = false
    /// Set when there is a broker: loop 0 forwards other loops' publishes to it.
    var broker: (any Relay)?
    /// With history: commits a submission on the loop it was sent to (`Hub.commit`).
    var commit: (@Sendable (Submission, Int) -> Void)?

    init(origin: EventLoop, loops: [EventLoop], locals: [LocalHub], budgets: [HandOffBudget], metrics: LoopMetrics) {
        self.origin = origin
        self.loops = loops
        self.locals = locals
        self.budgets = budgets
        self.metrics = metrics
        submissions = Array(repeating: [], count: loops.count)
    }

    func add(_ parcel: Parcel) {
        if pending.isEmpty && !submitting { origin.markDirty(self) }
        pending.append(parcel)
    }

    func submit(_ submission: Submission, to loop: Int) {
        if pending.isEmpty && !submitting { origin.markDirty(self) }
        submitting = true
        submissions[loop].append(submission)
    }

    func flush() {
        guard !pending.isEmpty || submitting else { return }
        let batch = pending
        pending = []
        let cost = batch.reduce(0) { $0 + $1.cost }
        for (index, loop) in loops.enumerated() where index != origin.index {
            let submitted = submissions[index]
            if !submitted.isEmpty { submissions[index] = [] }
            guard !batch.isEmpty || !submitted.isEmpty else { continue }
            let budget = budgets[index]
            let total = cost + submitted.reduce(0) { $0 + $1.cost }
            guard budget.take(total) else {
                // That loop is not running its tasks: these publishes miss its readers (and, on loop 0, Redis), and
                // submissions to it are lost. At most once, as for a slow consumer; an HTTP publish still gets its
                // answer (a lost submission reports for every loop it would have reached).
                metrics.handOffDropped.add(fromOwner: UInt64(batch.count + submitted.count))
                for parcel in batch { parcel.tally?.report(0) }
                for submission in submitted {
                    for _ in loops { submission.tally?.report(0) }
                }
                continue
            }
            let local = locals[index]
            let broker = index == 0 ? broker : nil
            let commit = commit
            loop.execute {
                for parcel in batch {
                    let delivered = local.deliver(
                        parcel.delivery, to: parcel.channel, except: parcel.excluded, issuer: parcel.issuer,
                        publishedAt: parcel.sequence)
                    parcel.tally?.report(delivered)
                    if let broker, !parcel.fromBroker { broker.publish(parcel.delivery.plain, to: parcel.channel) }
                }
                for submission in submitted { commit?(submission, index) }
                budget.giveBack(total)
            }
        }
        submitting = false
    }

    func handleEvents(_ events: UInt32) {}
    func handleTimer(scheduled: UInt64) {}
}
