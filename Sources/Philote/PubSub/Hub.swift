import Synchronization

/// Routes a publish to every loop: the publishing loop delivers at once; for every other loop the shared
/// frame joins that loop's outbox, and each outbox is handed over once per tick (one lock and one
/// wake-up per loop per tick, however many publishes). Outboxes and inboxes are FIFO, so messages from
/// one publisher reach every subscriber in publish order.
final class Hub: @unchecked Sendable {
    /// Publish sequence, shared by all loops: a session subscribed after a publish was numbered never gets
    /// it from another loop's late hand-off (a client that got it elsewhere and reconnected would see it
    /// twice: at-most-once delivery forbids that). One atomic add per publish, none per recipient.
    private let sequence = Atomic<UInt64>(0)
    private let loops: [EventLoop]
    private let locals: [LocalHub]
    /// One per origin loop, touched only by that loop's thread.
    private var outboxes: [Outbox] = []
    /// Set (before the loops start) when servers share Redis; it lives on loop 0, which forwards every
    /// local publish to it and takes other servers' messages from it.
    private(set) var broker: (any Relay)?

    /// `metrics` holds each loop's counters, in loop order.
    init(loops: [EventLoop], metrics: [LoopMetrics]) {
        self.loops = loops
        locals = loops.map { _ in LocalHub() }
        let budgets = loops.map { _ in HandOffBudget() }
        outboxes = loops.map {
            Outbox(origin: $0, loops: loops, locals: locals, budgets: budgets, metrics: metrics[$0.index])
        }
    }

    func local(_ loop: EventLoop) -> LocalHub { locals[loop.index] }

    /// Connects the broker, which must live on loop 0: each loop reports its first and last reader of a
    /// channel to it. Call before the loops start.
    func attach(_ broker: any Relay) {
        precondition(broker.loop === loops[0])
        self.broker = broker
        for outbox in outboxes { outbox.broker = broker }
        for (index, local) in locals.enumerated() {
            local.readersChanged =
                index == 0
                ? { channel, present in broker.readersChanged(channel, present: present) }
                : { channel, present in broker.loop.execute { broker.readersChanged(channel, present: present) } }
        }
    }

    var loopCount: Int { loops.count }

    /// Called on the sender's loop. Returns the number of recipients on that loop.
    @discardableResult
    func publish(_ delivery: Delivery, to channel: [UInt8], from sender: Session) -> Int {
        publish(delivery, to: channel, origin: sender.subscriber.loop.index, except: sender, tally: nil, remote: false)
    }

    /// Another server's message, from the broker on loop 0: to every reader on every loop, and not back to
    /// the broker.
    func publishFromBroker(_ delivery: Delivery, to channel: [UInt8]) {
        _ = publish(delivery, to: channel, origin: 0, except: nil, tally: nil, remote: true)
    }

    /// A publish that no connection sent (`POST /api/publish`), called on `loop`: the same path as a
    /// connection's publish on that loop, so one caller's publishes keep their order everywhere. Returns
    /// the recipients on `loop`; every other loop reports its own count to `tally` once it has delivered.
    @discardableResult
    func publish(_ delivery: Delivery, to channel: [UInt8], on loop: EventLoop, tally: PublishTally?) -> Int {
        publish(delivery, to: channel, origin: loop.index, except: nil, tally: tally, remote: false)
    }

    @inline(__always)
    private func publish(
        _ delivery: Delivery, to channel: [UInt8], origin: Int, except sender: Session?, tally: PublishTally?,
        remote: Bool
    ) -> Int {
        let delivered = locals[origin].deliver(delivery, to: channel, except: sender, publishedAt: .max)
        if loops.count > 1 {
            let number = sequence.add(1, ordering: .relaxed).newValue
            outboxes[origin].add(
                Parcel(delivery: delivery, channel: channel, sequence: number, tally: tally, fromBroker: remote))
        }
        // Publishes on other loops reach the broker when their parcel reaches loop 0 (Outbox.flush), so one
        // publisher's messages enter Redis in the order they were made.
        if origin == 0, !remote, let broker { broker.publish(delivery.plain, to: channel) }
        return delivered
    }

    /// The current publish number: a session records it when it subscribes.
    var currentSequence: UInt64 { sequence.load(ordering: .relaxed) }
}

/// A publish on its way to another loop. Its frames are immutable and their reference counts atomic,
/// so handing them across threads is safe although ManagedBuffer does not say so.
struct Parcel: @unchecked Sendable {
    let delivery: Delivery
    let channel: [UInt8]
    let sequence: UInt64
    /// Set for publishes over HTTP, whose answer counts the readers reached on every loop.
    let tally: PublishTally?
    /// Came from another server through the broker: not to be sent back to it.
    let fromBroker: Bool

    /// What it holds while it waits for another loop: its frames, its channel name, and about as much again for
    /// the parcel and the frames' headers.
    var cost: Int {
        var bytes = 128 + channel.count + delivery.plain.length
        for case let frame? in delivery.compressed { bytes += frame.length }
        return bytes
    }
}

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
    /// Set when there is a broker: loop 0 forwards other loops' publishes to it.
    var broker: (any Relay)?

    init(origin: EventLoop, loops: [EventLoop], locals: [LocalHub], budgets: [HandOffBudget], metrics: LoopMetrics) {
        self.origin = origin
        self.loops = loops
        self.locals = locals
        self.budgets = budgets
        self.metrics = metrics
    }

    func add(_ parcel: Parcel) {
        if pending.isEmpty { origin.markDirty(self) }
        pending.append(parcel)
    }

    func flush() {
        guard !pending.isEmpty else { return }
        let batch = pending
        pending = []
        let cost = batch.reduce(0) { $0 + $1.cost }
        for (index, loop) in loops.enumerated() where index != origin.index {
            let budget = budgets[index]
            guard budget.take(cost) else {
                // That loop is not running its tasks: these publishes miss its readers (and, on loop 0, Redis).
                // At most once, as for a slow consumer; an HTTP publish still gets its answer.
                metrics.handOffDropped.add(fromOwner: UInt64(batch.count))
                for parcel in batch { parcel.tally?.report(0) }
                continue
            }
            let local = locals[index]
            let broker = index == 0 ? broker : nil
            loop.execute {
                for parcel in batch {
                    let delivered = local.deliver(
                        parcel.delivery, to: parcel.channel, except: nil, publishedAt: parcel.sequence)
                    parcel.tally?.report(delivered)
                    if let broker, !parcel.fromBroker { broker.publish(parcel.delivery.plain, to: parcel.channel) }
                }
                budget.giveBack(cost)
            }
        }
    }

    func handleEvents(_ events: UInt32) {}
    func handleTimer(scheduled: UInt64) {}
}
