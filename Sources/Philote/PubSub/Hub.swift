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
    private let sequence = Atomic<UInt64>(0)
    private let loops: [EventLoop]
    private let locals: [LocalHub]
    /// One per origin loop, touched only by that loop's thread.
    private var outboxes: [Outbox] = []
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

    // MARK: History

    /// History on: a publish by `sender` (nil: over HTTP) on loop `origin`: `delivery` holds the frames plain
    /// readers get, `json` their text. It is submitted to the sequencer. Returns the readers reached on `origin` at
    /// once, which is all of them with one loop; with a tally every loop reports its count there instead, and this
    /// returns 0.
    @discardableResult
    func publish(
        _ delivery: Delivery, json: [UInt8], to channel: [UInt8], from sender: Session?, on origin: Int,
        tally: PublishTally?
    ) -> Int {
        let submission = Submission(
            delivery: delivery, json: json, channel: channel,
            excluded: sender.map { Unmanaged.passUnretained($0.subscriber).toOpaque() }, issuer: sender?.issuer,
            tally: tally)
        if origin == Self.sequencer { return commit(submission) }
        outboxes[origin].submit(submission, to: Self.sequencer)
        return 0
    }

    /// On the sequencer: the message gets its offset, joins history, and goes to every reader. Returns the readers
    /// reached on this loop (0 when it reports them to the publish's tally).
    @discardableResult
    private func commit(_ submission: Submission) -> Int {
        guard let history else { preconditionFailure("a submission without history") }
        if let broker {
            // Redis numbers it; every server, this one too, delivers it when Redis publishes it (`publishFromRedis`).
            broker.append(submission.delivery.plain, to: submission.channel, sender: Self.senderMark(submission))
            // An HTTP publish learns of no readers here: deliveries happen when Redis hands the message back.
            for _ in loops { submission.tally?.report(0) }
            return 0
        }
        let here = Self.sequencer
        var positioned: SharedFrame?
        var positionedJSON: [UInt8] = []
        let (_, number) = history.append(
            to: submission.channel, now: MonotonicClock.milliseconds(),
            numbered: { sequence.add(1, ordering: .relaxed).newValue },
            frame: { position in
                positionedJSON = ServerMessageEncoder.positioned(submission.json, at: position)
                let frame = positionedJSON.withUnsafeBytes { FrameWriter.frame(.text, payload: $0) }
                positioned = frame
                return frame
            })
        // Compressed outside the lock: readers recovering on other loops wait for the append alone.
        let delivery = positionedJSON.withUnsafeBytes { positionedJSON in
            Delivery(
                plain: submission.delivery.plain, compressed: submission.delivery.variants, positioned: positioned!,
                positionedCompressed: compressPositioned?(positionedJSON) ?? [])
        }
        let delivered = locals[here].deliver(
            delivery, to: submission.channel, except: submission.excluded, issuer: submission.issuer, publishedAt: .max)
        if loops.count > 1 {
            outboxes[here].add(
                Parcel(
                    delivery: delivery, channel: submission.channel, sequence: number, tally: submission.tally,
                    fromBroker: false, excluded: submission.excluded, issuer: submission.issuer))
        }
        guard let tally = submission.tally else { return delivered }
        tally.report(delivered)
        return 0
    }

    /// A message Redis numbered and published, on the sequencer (the broker's loop): this server's copy keeps it,
    /// and every reader here gets it, but its sender (when `sender`, the mark `append` sent, is this server's).
    func publishFromRedis(
        _ delivery: Delivery, positioned frame: SharedFrame, json positionedJSON: UnsafeRawBufferPointer,
        to channel: [UInt8], at position: StreamPosition, sender: UnsafeRawBufferPointer?
    ) {
        guard let history else { return }
        let here = Self.sequencer
        let number = history.record(
            frame, to: channel, at: position, now: MonotonicClock.milliseconds(),
            numbered: { sequence.add(1, ordering: .relaxed).newValue })
        let full = Delivery(
            plain: delivery.plain, compressed: delivery.variants, positioned: frame,
            positionedCompressed: compressPositioned?(positionedJSON) ?? [])
        let (excluded, issuer) = sender.map(Self.openSenderMark) ?? (nil, nil)
        locals[here].deliver(full, to: channel, except: excluded, issuer: issuer, publishedAt: .max)
        if loops.count > 1 {
            outboxes[here].add(
                Parcel(
                    delivery: full, channel: channel, sequence: number, tally: nil, fromBroker: true,
                    excluded: excluded, issuer: issuer))
        }
    }

    /// History on Redis: asks Redis for `channel`'s history after `after` and joins it to this server's copy, then
    /// calls `completion` on `loop` with whether Redis answered.
    func fetch(
        _ channel: [UInt8], after: UInt64, on loop: EventLoop, completion: @escaping @Sendable (Bool) -> Void
    ) {
        guard let broker, let history, let size = historySize else { return loop.execute { completion(false) } }
        nonisolated(unsafe) let positionedFrame = positionedFrame
        broker.loop.execute {
            broker.fetch(channel, after: after, count: size) { result in
                if case .found(let found) = result {
                    history.merge(found, into: channel, now: MonotonicClock.milliseconds()) { frame, position in
                        positionedFrame?(frame, position)
                    }
                }
                let available = if case .unavailable = result { false } else { true }
                loop.execute { completion(available) }
            }
        }
    }

    /// `HISTORY_SIZE`, for fetches.
    var historySize: Int?

    /// What `append` sends Redis for the sender: its subscriber's address and its issuer id (24 bytes), only ever
    /// compared by this server (see `LocalHub.deliver`); zeros for a publish over HTTP.
    static func senderMark(_ submission: Submission) -> [UInt8] {
        var mark = [UInt8](repeating: 0, count: 24)
        guard let excluded = submission.excluded, let issuer = submission.issuer else { return mark }
        withUnsafeBytes(of: UInt(bitPattern: excluded)) { mark.replaceSubrange(0..<8, with: $0) }
        withUnsafeBytes(of: issuer) { mark.replaceSubrange(8..<24, with: $0) }
        return mark
    }

    static func openSenderMark(_ mark: UnsafeRawBufferPointer) -> (UnsafeMutableRawPointer?, IssuerID?) {
        guard mark.count == 24, mark.contains(where: { $0 != 0 }) else { return (nil, nil) }
        let address = mark.loadUnaligned(as: UInt.self)
        var issuer = IssuerID.random()
        withUnsafeMutableBytes(of: &issuer) { $0.copyMemory(from: UnsafeRawBufferPointer(rebasing: mark[8..<24])) }
        return (UnsafeMutableRawPointer(bitPattern: address), issuer)
    }

    /// What a reader at `position` (nil: none) is missing from `channel`, at most about `maxBytes` of it, read
    /// together with the publish number it continues from. History on; any loop.
    func recover(_ channel: [UInt8], after position: StreamPosition?, maxBytes: Int) -> HistoryRead {
        history!.read(
            channel, after: position, maxBytes: maxBytes, now: MonotonicClock.milliseconds(),
            sequence: { sequence.load(ordering: .relaxed) })
    }
}

/// A publish on its way to the sequencer (history on): the message as plain readers get it, its frames, and who sent
/// it (so that it is not delivered back).
struct Submission: @unchecked Sendable {
    let delivery: Delivery
    let json: [UInt8]
    let channel: [UInt8]
    /// The sender's subscriber, as an address only: compared, never followed (see `LocalHub.deliver`).
    let excluded: UnsafeMutableRawPointer?
    let issuer: IssuerID?
    let tally: PublishTally?

    var cost: Int {
        var bytes = 128 + json.count + channel.count + delivery.plain.length
        for case let frame? in delivery.variants { bytes += frame.length }
        return bytes
    }
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
    /// With history, the sender (on whatever loop) that must not get it back; see `Submission`.
    var excluded: UnsafeMutableRawPointer? = nil
    var issuer: IssuerID? = nil

    /// What it holds while it waits for another loop: its frames, its channel name, and about as much again for
    /// the parcel and the frames' headers.
    var cost: Int {
        var bytes = 128 + channel.count + delivery.plain.length
        for case let frame? in delivery.variants { bytes += frame.length }
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
