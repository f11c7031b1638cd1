import Synchronization

/// The hub with history on: publishes go to the sequencer, which numbers them in the store (or, on Redis, hands
/// them to the broker and numbers what Redis publishes), and recoveries read the store (see the type's comment).
extension Hub {
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
    func commit(_ submission: Submission) -> Int {
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
        let (_, number) = history.append(
            to: submission.channel, now: MonotonicClock.milliseconds(),
            numbered: { sequence.add(1, ordering: .relaxed).newValue },
            frame: { position in
                let frame = submission.json.withUnsafeBytes { ServerMessageEncoder.positionedFrame($0, at: position) }
                positioned = frame
                return frame
            })
        let frame = positioned!
        // Compressed outside the lock: readers recovering on other loops wait for the append alone.
        let delivery = Delivery(
            plain: submission.delivery.plain, compressed: submission.delivery.compressed, positioned: frame,
            positionedCompressed: compressPositioned?(ServerMessageEncoder.payload(of: frame)) ?? [])
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
            plain: delivery.plain, compressed: delivery.compressed, positioned: frame,
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
        let positionedFrame = positionedFrame
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
        let issuer = IssuerID(bytes: UnsafeRawBufferPointer(rebasing: mark[8..<24]))
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
