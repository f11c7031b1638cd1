import Synchronization

/// Routes a publish to every loop: the publishing loop delivers at once; for every other loop the shared
/// frame joins that loop's outbox, and each outbox is handed over once per tick (one lock and one
/// wake-up per loop per tick, however many publishes). Outboxes and inboxes are FIFO, so messages from
/// one publisher reach every subscriber in publish order.
///
/// With history (`HISTORY_SIZE` > 0) every publish is submitted to one loop, the sequencer (loop 0): it appends the
/// message to the `HistoryStore` (which gives the offset) and delivers from there. Every loop then gets every
/// message from one origin, in one order, so each channel arrives in offset order and each publisher's messages in
/// the order sent, across channels too, as without history. The sequencer does the per-publish work only (the
/// append, the positioned frame); the frames every reader shares are made on the publishing loop, and the fan-out
/// to each loop's readers on that loop.
final class Hub: @unchecked Sendable {
    /// Publish sequence, shared by all loops: a session subscribed after a publish was numbered never gets
    /// it from another loop's late hand-off (a client that got it elsewhere and reconnected would see it
    /// twice: at-most-once delivery forbids that). One atomic add per publish, none per recipient.
    let sequence = Atomic<UInt64>(0)
    let loops: [EventLoop]
    let locals: [LocalHub]
    /// One per origin loop, touched only by that loop's thread.
    private(set) var outboxes: [Outbox] = []
    /// Set (before the loops start) when servers share Redis; it lives on loop 0, which forwards every
    /// local publish to it and takes other servers' messages from it.
    private(set) var broker: (any Relay)?
    /// With history on: every channel's history, appended to by the sequencer loop alone.
    let history: HistoryStore?
    /// The loop that numbers every publish with history on.
    static let sequencer = 0
    /// With history: makes the compressed forms of a positioned message on the sequencer, for the window sizes that
    /// readers of positions use. Set by the application before the loops start.
    var compressPositioned: ((_ json: UnsafeRawBufferPointer) -> [SharedFrame?])?
    /// With history on Redis: the stored (positioned) frame of a message Redis kept, from its plain frame; nil
    /// when it is not a text frame made by a server. Set by the application before the loops start.
    var positionedFrame: (@Sendable (_ frame: [UInt8], _ position: StreamPosition) -> SharedFrame?)?

    /// `HISTORY_SIZE`, for fetches from Redis.
    var historySize: Int?

    /// History is kept by Redis, and the store holds this server's copy of it (see `Replay`).
    var historyIsCopy: Bool { history != nil && broker != nil }

    /// `metrics` holds each loop's counters, in loop order; `history` turns history on.
    init(loops: [EventLoop], metrics: [LoopMetrics], history settings: HistorySettings? = nil) {
        self.loops = loops
        locals = loops.map { _ in LocalHub() }
        history = settings.map { HistoryStore(settings: $0) }
        let budgets = loops.map { _ in HandOffBudget() }
        outboxes = loops.map {
            Outbox(origin: $0, loops: loops, locals: locals, budgets: budgets, metrics: metrics[$0.index])
        }
        if let history, let ttl = settings?.ttl {
            for outbox in outboxes { outbox.commit = { [unowned self] submission, _ in _ = commit(submission) } }
            // Often enough that a channel nobody publishes to lets its expired messages go within about a TTL.
            let interval = max(100, min(ttl / 2, 1000))
            let sequencer = loops[Self.sequencer]
            sequencer.execute { Self.sweep(history, on: sequencer, every: interval) }
        }
    }

    private static func sweep(_ store: HistoryStore, on loop: EventLoop, every interval: UInt64) {
        store.sweep(now: MonotonicClock.milliseconds())
        loop.schedule(at: MonotonicClock.milliseconds() + interval) { sweep(store, on: loop, every: interval) }
    }

    func local(_ loop: EventLoop) -> LocalHub { locals[loop.index] }

    /// Connects the broker, which must live on loop 0: each loop reports its first and last reader of a
    /// channel to it. Call before the loops start.
    func attach(_ broker: any Relay) {
        precondition(broker.loop === loops[Self.sequencer])
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
