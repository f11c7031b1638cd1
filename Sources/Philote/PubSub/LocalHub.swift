/// One loop's channel index: channel → the sessions on this loop that read it. Only that loop's thread
/// touches it, so it needs no lock.
final class LocalHub: @unchecked Sendable {
    /// A reader of a channel. unowned(unsafe): the connection keeps its session and subscriber alive and
    /// unsubscribes before letting go, so the list needs no reference count, and walking it costs no atomics.
    /// The subscriber and the subscription time are copied in so that a delivery touches the entry and
    /// the subscriber only (with 10,000 subscribers every pointer followed is a likely cache miss).
    private struct Entry {
        unowned(unsafe) let session: Session
        unowned(unsafe) let subscriber: Subscriber
        /// Publishes numbered up to this one are not delivered (`UInt64.max`: none is, while history is replayed).
        var subscribedAt: UInt64
        /// Which frame of a delivery it gets (`Delivery.variant`): compressed or not, positioned or not.
        var variant: UInt8
        /// Which of the session's read channels this is, so removal is O(1).
        var slot: Int
    }

    private final class Subscribers {
        var entries: ContiguousArray<Entry> = []
    }

    private var channels: [[UInt8]: Subscribers] = [:]
    private var permissionsCache: [String: Permissions] = [:]
    /// Told when this loop gains its first reader of a channel or loses its last (the broker subscribes
    /// to what some loop reads). Set before the loops start; nil without a broker.
    var readersChanged: ((_ channel: [UInt8], _ present: Bool) -> Void)?

    init() {}

    /// The shared permissions object for `token`, made from `claims` on first use.
    func permissions(forToken token: String, claims: Claims) -> Permissions {
        if let cached = permissionsCache[token] { return cached }
        let made = Permissions(claims, token: token)
        permissionsCache[token] = made
        return made
    }

    func subscribe(_ session: Session, sequence: UInt64) {
        session.permissions.users += 1
        for (slot, channel) in session.permissions.read.enumerated() {
            add(session, slot: slot, channel: channel, sequence: sequence)
        }
    }

    /// A token refresh: `session` reads what `permissions` allows from now on. A channel in both lists keeps its
    /// entry (its place, its positions, a replay in progress); one no longer readable stops at once; a new one
    /// gets the publishes numbered after `sequence`. Returns the read slots of the new channels.
    func change(_ session: Session, to permissions: Permissions, sequence: UInt64) -> [Int] {
        let old = session.permissions
        guard permissions !== old else { return [] }
        var kept: [[UInt8]: Int] = [:]
        for (slot, channel) in old.read.enumerated() {
            if permissions.read.contains(channel) {
                kept[channel] = session.position(slot)
            } else {
                remove(session, slot: slot, channel: channel)
            }
        }
        // Removing swaps another session's entry into the hole, never one of this session's (one entry per channel).
        release(old)
        session.permissions = permissions
        permissions.users += 1
        session.resetPositions()
        var added: [Int] = []
        for (slot, channel) in permissions.read.enumerated() {
            if let index = kept[channel], let subscribers = channels[channel] {
                subscribers.entries[index].slot = slot
                session.setPosition(slot, index)
            } else {
                add(session, slot: slot, channel: channel, sequence: sequence)
                added.append(slot)
            }
        }
        return added
    }

    private func add(_ session: Session, slot: Int, channel: [UInt8], sequence: UInt64) {
        let subscribers: Subscribers
        if let existing = channels[channel] {
            subscribers = existing
        } else {
            subscribers = Subscribers()
            channels[channel] = subscribers
            readersChanged?(channel, true)
        }
        session.setPosition(slot, subscribers.entries.count)
        subscribers.entries.append(
            Entry(
                session: session, subscriber: session.subscriber, subscribedAt: sequence,
                variant: session.subscriber.windowBits, slot: slot))
    }

    /// Read channel number `slot` of a subscribed `session` gets positioned frames from now on, and only the
    /// publishes numbered after `subscribedAt` (`UInt64.max`: none, until this is called again).
    func position(_ session: Session, slot: Int, subscribedAt: UInt64) {
        guard slot < session.permissions.read.count, let subscribers = channels[session.permissions.read[slot]]
        else { return }
        let index = session.position(slot)
        subscribers.entries[index].subscribedAt = subscribedAt
        subscribers.entries[index].variant = Delivery.variant(
            windowBits: session.subscriber.windowBits, positioned: true)
    }

    /// The same for read channel `channel`, or nothing when `session` does not read it (e.g. a refresh dropped it).
    func position(_ session: Session, channel: [UInt8], subscribedAt: UInt64) {
        guard let slot = session.permissions.read.firstIndex(of: channel) else { return }
        position(session, slot: slot, subscribedAt: subscribedAt)
    }

    func unsubscribe(_ session: Session) {
        for (slot, channel) in session.permissions.read.enumerated() {
            remove(session, slot: slot, channel: channel)
        }
        release(session.permissions)
    }

    private func remove(_ session: Session, slot: Int, channel: [UInt8]) {
        guard let subscribers = channels[channel] else { return }
        let position = session.position(slot)
        let last = subscribers.entries.count - 1
        if position != last {
            let moved = subscribers.entries[last]
            subscribers.entries[position] = moved
            moved.session.setPosition(moved.slot, position)
        }
        subscribers.entries.removeLast()
        if subscribers.entries.isEmpty {
            channels[channel] = nil
            readersChanged?(channel, false)
        }
    }

    private func release(_ permissions: Permissions) {
        permissions.users -= 1
        if permissions.users == 0 { permissionsCache[permissions.token] = nil }
    }

    /// Queues the delivery on every reader of `channel` here except `sender` and those that subscribed after
    /// publish number `publishedAt`; returns how many. The lists are not changed while they are walked: a slow
    /// consumer found here is closed later, in its connection's flush (see Subscriber).
    @discardableResult
    func deliver(_ delivery: Delivery, to channel: [UInt8], except sender: Session?, publishedAt: UInt64) -> Int {
        deliver(
            delivery, to: channel, except: sender.map { Unmanaged.passUnretained($0.subscriber).toOpaque() },
            issuer: sender?.issuer, publishedAt: publishedAt)
    }

    /// The same for a publish whose sender is known by its subscriber's address and issuer id (a publish made on
    /// another loop and numbered there, on a channel with history): the address alone could be a newer connection's
    /// after the sender closed, so a match is confirmed by the issuer.
    @discardableResult
    func deliver(
        _ delivery: Delivery, to channel: [UInt8], except excluded: UnsafeMutableRawPointer?, issuer: IssuerID?,
        publishedAt: UInt64
    ) -> Int {
        guard let subscribers = channels[channel] else { return 0 }
        var count = 0
        subscribers.entries.withUnsafeBufferPointer { entries in
            guard let first = entries.first else { return }
            // One reference per publish on this loop instead of one per recipient (see Subscriber).
            delivery.keepAlive(on: first.subscriber.loop)
            for entry in entries where entry.subscribedAt < publishedAt {
                // Unmanaged and guaranteed, so that the compiler adds no retain and release per recipient:
                // the subscriber is alive while subscribed, and the frame is kept alive by the loop.
                let subscriber = Unmanaged.passUnretained(entry.subscriber)
                if subscriber.toOpaque() == excluded && entry.session.issuer == issuer { continue }
                let frame = delivery.frame(forVariant: entry.variant)
                let queued = subscriber._withUnsafeGuaranteedRef { subscriber in
                    frame._withUnsafeGuaranteedRef { subscriber.send(heldFrame: $0) }
                }
                // A slow consumer found here is no recipient (`philote_messages_sent_total` counts what each
                // connection's flush writes).
                if queued { count += 1 }
            }
        }
        return count
    }
}
