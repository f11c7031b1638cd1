/// Recovery for one connection: the answer to each `since` it gave, and the messages it missed, queued as it
/// takes them. While a channel is replayed its live messages are not delivered to this connection (its entry in
/// the hub waits at publish number `UInt64.max`); they are in history, and the replay reads them from there. The
/// read that reaches the channel's newest message hands the channel over to live delivery from the publish number
/// read with it, so nothing is missed and nothing comes twice (see `HistoryStore`).
///
/// With history on Redis the server's store is a copy of what it has heard since it subscribed; when the copy
/// cannot say (no record of the channel, another epoch, an offset before or after it), the channel waits for a
/// fetch from Redis (`Hub.fetch`) that joins the copy, and is then answered from the copy. Touched on its loop only:
/// a fetch's completion comes back there (hence `@unchecked Sendable`).
final class Replay: @unchecked Sendable {
    private struct Pending {
        let channel: [UInt8]
        /// The client's position; then, once answered, how far the replay has gone.
        var position: StreamPosition?
        var answered = false
        /// A fetch is in flight; `fetched`: it has come back (the copy is then the answer).
        var waiting = false
        var fetched = false
    }

    // unowned(unsafe): the connection owns the session and the subscriber, and this replay is cancelled when its
    // subscriber lets it go (a fetch's completion may still hold it, and then does nothing); the hubs live as long
    // as the server.
    private unowned(unsafe) let session: Session
    private unowned(unsafe) let hub: Hub
    private unowned(unsafe) let local: LocalHub
    private unowned(unsafe) let counters: RecoveryCounters
    private var pending: [Pending] = []
    private(set) var cancelled = false

    private init(session: Session, hub: Hub, local: LocalHub, counters: RecoveryCounters) {
        self.session = session
        self.hub = hub
        self.local = local
        self.counters = counters
    }

    /// Answers `requests` (each already checked: a channel `session` reads) in order, queues what fits in `budget`
    /// bytes, and leaves a replay on the subscriber while more is to come. Right after the session subscribed (or a
    /// token refresh added channels: then behind the replay in progress, if any), on its loop.
    static func start(
        _ requests: [(slot: Int, request: RecoveryRequest)], session: Session, hub: Hub, local: LocalHub,
        counters: RecoveryCounters, budget: Int
    ) {
        let replay =
            session.subscriber.replay ?? Replay(session: session, hub: hub, local: local, counters: counters)
        for (slot, request) in requests {
            // Nothing of the channel is delivered live until its answer is sent and its replay done.
            local.position(session, slot: slot, subscribedAt: .max)
            replay.pending.append(Pending(channel: request.channel, position: request.position))
        }
        session.subscriber.replay = replay
        replay.refill(budget: budget)
    }

    /// A token refresh took away channels: their replays end here, without an answer (nothing more of them comes).
    func forgetUnreadable() {
        pending.removeAll { !session.permissions.read.contains($0.channel) }
        if pending.isEmpty { session.subscriber.replay = nil }
    }

    /// The subscriber let it go (its connection is closing): a fetch that comes back later does nothing.
    func cancel() {
        cancelled = true
    }

    /// The connection has written enough of its queue to take about `budget` more bytes: answers, the next
    /// messages, and the hand-over to live delivery of each channel that has caught up. Called at the start and at
    /// the end of the connection's flushes.
    func refill(budget: Int) {
        var budget = budget
        var index = 0
        // Answers go in the order the `since`s were given: behind a channel still waiting for its fetch, the
        // others may start theirs, but wait for their answers.
        var blocked = false
        while index < pending.count, budget > 0 {
            if pending[index].waiting {
                blocked = true
                index += 1
                continue
            }
            if blocked && !pending[index].answered {
                if hub.historyIsCopy && !pending[index].fetched
                    && needsFetch(hub.recover(pending[index].channel, after: pending[index].position, maxBytes: 1))
                {
                    fetch(&pending[index])
                }
                index += 1
                continue
            }
            if advance(&pending[index], budget: &budget) {
                pending.remove(at: index)
            } else {
                // It may have just started its fetch.
                blocked = blocked || pending[index].waiting
                index += 1
            }
        }
        if pending.isEmpty { session.subscriber.replay = nil }
    }

    /// One step for one channel; true when it is handed over to live delivery.
    private func advance(_ item: inout Pending, budget: inout Int) -> Bool {
        let read = hub.recover(item.channel, after: item.position, maxBytes: max(budget, 1))
        if !item.answered {
            if hub.historyIsCopy && !item.fetched && needsFetch(read) {
                fetch(&item)
                return false
            }
            answer(item.channel, read.status, read.current)
            item.answered = true
        } else if read.status != .continues {
            // Its history moved on while the connection was catching up (too slow, or dropped for memory).
            answer(item.channel, read.status, read.current)
        }
        guard read.status == .continues, let current = read.current else {
            local.position(session, channel: item.channel, subscribedAt: read.sequence)
            return true
        }
        queue(read.messages, budget: &budget)
        if read.caughtUp {
            local.position(session, channel: item.channel, subscribedAt: read.sequence)
            return true
        }
        item.position = StreamPosition(epoch: current.epoch, offset: read.through)
        return false
    }

    /// Whether a server whose store is a copy must ask Redis before it answers.
    private func needsFetch(_ read: HistoryRead) -> Bool {
        switch read.status {
        case .continues: false
        case .new: read.current == nil
        case .epochChanged, .tooOld, .ahead: true
        }
    }

    private func fetch(_ item: inout Pending) {
        item.waiting = true
        let channel = item.channel
        let loop = session.subscriber.loop
        hub.fetch(channel, after: item.position?.offset ?? 0, on: loop) { [self] available in
            guard !cancelled, let index = pending.firstIndex(where: { $0.channel == channel && $0.waiting }) else {
                return
            }
            pending[index].waiting = false
            pending[index].fetched = true
            if !available {
                let current = hub.recover(channel, after: nil, maxBytes: 1).current
                counters.count(.unavailable)
                send(RecoveryAnswer.encode(
                    channel: channel, outcome: "failed", reason: "history unavailable", position: current))
                local.position(session, channel: channel, subscribedAt: hub.currentSequence)
                pending.remove(at: index)
            }
            refill(budget: session.subscriber.replayBudget)
        }
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
        send(json)
    }

    private func send(_ json: [UInt8]) {
        session.subscriber.enqueue(json.withUnsafeBytes { FrameWriter.frame(.text, payload: $0) })
    }
}
