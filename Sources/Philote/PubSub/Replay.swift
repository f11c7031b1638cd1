/// Recovery for one connection: the answer to each `since` it gave, and the messages it missed, queued as it
/// takes them. While a channel is replayed its live messages are not delivered to this connection (its entry in
/// the hub waits at publish number `UInt64.max`); they are in history, and the replay reads them from there. The
/// read that reaches the channel's newest message hands the channel over to live delivery from the publish number
/// read with it, so nothing is missed and nothing comes twice (see `HistoryStore`).
final class Replay {
    private struct Pending {
        let slot: Int
        let channel: [UInt8]
        var position: StreamPosition
    }

    // unowned(unsafe): the connection owns the session and the subscriber, and this replay is dropped with its
    // subscriber; the hubs live as long as the server.
    private unowned(unsafe) let session: Session
    private unowned(unsafe) let hub: Hub
    private unowned(unsafe) let local: LocalHub
    private unowned(unsafe) let counters: RecoveryCounters
    private var pending: [Pending] = []

    private init(session: Session, hub: Hub, local: LocalHub, counters: RecoveryCounters) {
        self.session = session
        self.hub = hub
        self.local = local
        self.counters = counters
    }

    /// Answers `requests` (each already checked: a channel `session` reads) in order, queues what fits in `budget`
    /// bytes, and leaves a replay on the subscriber when more is to come. Right after the session subscribed, on
    /// its loop.
    static func start(
        _ requests: [(slot: Int, request: RecoveryRequest)], session: Session, hub: Hub, local: LocalHub,
        counters: RecoveryCounters, budget: Int
    ) {
        let replay = Replay(session: session, hub: hub, local: local, counters: counters)
        var budget = budget
        for (slot, request) in requests {
            let read = hub.recover(request.channel, after: request.position, maxBytes: max(budget, 1))
            replay.answer(request.channel, read.status, read.current)
            guard read.status == .continues, !read.caughtUp, let current = read.current else {
                replay.queue(read.messages, budget: &budget)
                local.position(session, slot: slot, subscribedAt: read.sequence)
                continue
            }
            replay.queue(read.messages, budget: &budget)
            local.position(session, slot: slot, subscribedAt: .max)
            replay.pending.append(
                Pending(slot: slot, channel: request.channel, position: StreamPosition(epoch: current.epoch, offset: read.through)))
        }
        if !replay.pending.isEmpty { session.subscriber.replay = replay }
    }

    /// The connection has written enough of its queue to take about `budget` more bytes: the next messages, and
    /// the hand-over to live delivery of each channel that has caught up. Called at the end of its flush.
    func refill(budget: Int) {
        var budget = budget
        while budget > 0, let next = pending.first {
            let read = hub.recover(next.channel, after: next.position, maxBytes: budget)
            guard read.status == .continues else {
                // Its history moved on while the connection was catching up (too slow, or dropped for memory).
                answer(next.channel, read.status, read.current)
                local.position(session, slot: next.slot, subscribedAt: read.sequence)
                pending.removeFirst()
                continue
            }
            queue(read.messages, budget: &budget)
            if read.caughtUp {
                local.position(session, slot: next.slot, subscribedAt: read.sequence)
                pending.removeFirst()
            } else {
                pending[0].position = StreamPosition(epoch: next.position.epoch, offset: read.through)
            }
        }
        if pending.isEmpty { session.subscriber.replay = nil }
    }

    private func queue(_ messages: [SharedFrame], budget: inout Int) {
        if !messages.isEmpty { counters.replayed(messages.count) }
        for frame in messages {
            session.subscriber.enqueue(frame)
            budget -= frame.length
        }
    }

    private func answer(_ channel: [UInt8], _ status: HistoryRead.Status, _ current: StreamPosition?) {
        counters.count(status)
        let json: [UInt8] =
            switch status {
            case .continues: RecoveryAnswer.encode(channel: channel, outcome: "ok", reason: nil, position: current)
            case .new: RecoveryAnswer.encode(channel: channel, outcome: "new", reason: nil, position: current)
            case .epochChanged:
                RecoveryAnswer.encode(channel: channel, outcome: "failed", reason: "epoch changed", position: current)
            case .tooOld:
                RecoveryAnswer.encode(channel: channel, outcome: "failed", reason: "offset too old", position: current)
            case .ahead:
                RecoveryAnswer.encode(
                    channel: channel, outcome: "failed", reason: "offset ahead of the channel", position: current)
            }
        session.subscriber.enqueue(json.withUnsafeBytes { FrameWriter.frame(.text, payload: $0) })
    }
}
