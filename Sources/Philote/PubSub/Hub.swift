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

    /// `metrics` holds each loop's counters, in loop order.
    init(loops: [EventLoop], metrics: [LoopMetrics]) {
        self.loops = loops
        locals = metrics.map { LocalHub(metrics: $0) }
        outboxes = loops.map { Outbox(origin: $0, loops: loops, locals: locals) }
    }

    func local(_ loop: EventLoop) -> LocalHub { locals[loop.index] }

    var loopCount: Int { loops.count }

    /// Called on the sender's loop. Returns the number of recipients on that loop.
    @discardableResult
    func publish(_ delivery: Delivery, to channel: [UInt8], from sender: Session) -> Int {
        publish(delivery, to: channel, origin: sender.connection.loop.index, except: sender, tally: nil)
    }

    /// A publish that no connection sent (`POST /api/publish`), called on `loop`: the same path as a
    /// connection's publish on that loop, so one caller's publishes keep their order everywhere. Returns
    /// the recipients on `loop`; every other loop reports its own count to `tally` once it has delivered.
    @discardableResult
    func publish(_ delivery: Delivery, to channel: [UInt8], on loop: EventLoop, tally: PublishTally?) -> Int {
        publish(delivery, to: channel, origin: loop.index, except: nil, tally: tally)
    }

    @inline(__always)
    private func publish(
        _ delivery: Delivery, to channel: [UInt8], origin: Int, except sender: Session?, tally: PublishTally?
    ) -> Int {
        let delivered = locals[origin].deliver(delivery, to: channel, except: sender, publishedAt: .max)
        if loops.count > 1 {
            let number = sequence.add(1, ordering: .relaxed).newValue
            outboxes[origin].add(Parcel(delivery: delivery, channel: channel, sequence: number, tally: tally))
        }
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
}

/// What one loop has published this tick for the other loops; shipped in the loop's before-sleep pass.
final class Outbox: EventHandler, @unchecked Sendable {
    let handlerID = HandlerIDs.make()
    private let origin: EventLoop
    private let loops: [EventLoop]
    private let locals: [LocalHub]
    private var pending: [Parcel] = []

    init(origin: EventLoop, loops: [EventLoop], locals: [LocalHub]) {
        self.origin = origin
        self.loops = loops
        self.locals = locals
    }

    func add(_ parcel: Parcel) {
        if pending.isEmpty { origin.markDirty(self) }
        pending.append(parcel)
    }

    func flush() {
        guard !pending.isEmpty else { return }
        let batch = pending
        pending = []
        for (index, loop) in loops.enumerated() where index != origin.index {
            let local = locals[index]
            loop.execute {
                for parcel in batch {
                    let delivered = local.deliver(
                        parcel.delivery, to: parcel.channel, except: nil, publishedAt: parcel.sequence)
                    parcel.tally?.report(delivered)
                }
            }
        }
    }

    func handleEvents(_ events: UInt32) {}
    func handleTimer(scheduled: UInt64) {}
}
