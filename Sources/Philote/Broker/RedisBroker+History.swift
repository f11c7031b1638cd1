import CSystem

/// History on Redis (`HistoryScripts`): publishes go through the append script, and every server delivers from
/// what Redis publishes, its own publishes included, so that offsets are global and a message is live nowhere
/// before it is in history. A server recovers a reader from its own copy when it can (the hub's store, fed from
/// its subscriptions) and from Redis otherwise: a fetch.
///
/// A fetch must join the server's copy exactly where its live stream is: the fetch script publishes a marker on
/// the channel before it reads, and runs only once this server's subscription is confirmed, so every message
/// before the marker in the live stream is in what it read, and every one after it is not. The fetch completes
/// when both its reply and its marker have arrived, in stream order.
///
/// Reply handlers capture the broker `unowned`: it owns the links whose replies call them, and a weak reference's
/// side table is one LeakSanitizer cannot follow (it reports it as leaked at exit).
extension RedisBroker {
    struct PendingFetch {
        let channel: [UInt8]
        let shard: Int
        let after: UInt64
        let count: Int
        var result: RemoteHistory?
        var markerSeen = false
        var sent = false
        /// Everyone waiting for it: fetches of one channel that start no later than this one share it.
        var completions: [(RemoteHistory) -> Void]
    }

    private static let evalsha = Array("EVALSHA".utf8)

    func historyKeys(_ channel: [UInt8]) -> [[UInt8]] {
        [prefix + Array("history:".utf8) + channel, prefix + Array("position:".utf8) + channel, key(for: channel)]
    }

    /// Loads both scripts on a publishing link that just came up (after a Redis restart they are gone).
    func loadScripts(on link: RedisLink) {
        guard history != nil else { return }
        for script in [HistoryScripts.append, HistoryScripts.fetch] {
            link.command([Array("SCRIPT".utf8), Array("LOAD".utf8), Array(script.utf8)]) { [unowned self] reply in
                guard let reply, reply.pointee.type == REDIS_REPLY_ERROR else { return }
                logger.error(
                    "redis refused the history script", ["redis": link.endpoint.label, "error": Self.text(reply)])
            }
        }
    }

    /// A publish with history: appended and published by Redis, or dropped (and counted) like any publish Redis
    /// cannot take. `sender` is the hub's opaque mark of the publisher. On `loop`.
    @discardableResult
    func append(_ frame: SharedFrame, to channel: [UInt8], sender: [UInt8]) -> Bool {
        guard let history else { return false }
        let shard = shards[ring.shard(for: channel)]
        guard shard.publisher.isReady else {
            status.drop(.disconnected)
            return false
        }
        guard shard.publisher.pendingBytes + BrokerEnvelope.positionedHeadSize + frame.length <= maxPending else {
            status.drop(.queueFull)
            return false
        }
        let keys = historyKeys(channel)
        let arguments: [[UInt8]] = [
            Self.evalsha, HistoryScripts.appendSHA, Array("3".utf8), keys[0], keys[1], keys[2],
            Array(String(history.size).utf8), Array(String(history.ttl).utf8), Array(Epoch.random().text.utf8),
            BrokerEnvelope.positionedHead(origin: serverID, sender: sender), Array(frame.buffer),
        ]
        let sent = shard.publisher.command(arguments, pending: frame.length) { [unowned self] reply in
            guard let reply, reply.pointee.type == REDIS_REPLY_ERROR else { return }
            // NOSCRIPT after a SCRIPT FLUSH: loaded again for the next publishes; this one is lost.
            status.drop(.disconnected)
            if Self.text(reply).hasPrefix("NOSCRIPT") { loadScripts(on: shard.publisher) }
        }
        if sent { status.published.add(fromOwner: 1) } else { status.drop(.disconnected) }
        return sent
    }

    /// Reads `channel`'s history after `after` (its newest `count` messages at most; 0: the position only) and calls
    /// `completion` on `loop` once the read has joined this server's live stream, or at once with `.unavailable`.
    /// This server must have a reader of the channel (its subscription is what the read joins).
    func fetch(_ channel: [UInt8], after: UInt64, count: Int, completion: @escaping (RemoteHistory) -> Void) {
        let index = ring.shard(for: channel)
        guard history != nil, hasReaders(channel) else {
            completion(.unavailable)
            return
        }
        // Many clients recovering one channel at once (a deploy) share one read.
        if let (id, _) = fetches.first(where: { $0.value.channel == channel && $0.value.after <= after }) {
            fetches[id]?.completions.append(completion)
            return
        }
        let id = nextFetch
        nextFetch += 1
        fetches[id] = PendingFetch(
            channel: channel, shard: index, after: after, count: count, completions: [completion])
        if shards[index].isUp && shards[index].isSubscribed(channel) {
            sendFetch(id)
        } else if !shards[index].isUp {
            // Not connected yet (a server that has just started) or reconnecting: the fetch goes once the channel's
            // subscription is confirmed, if that happens within REDIS_TIMEOUT, as a command would wait.
            loop.schedule(at: loop.now + timeout) { [unowned self] in
                if let fetch = fetches[id], !fetch.sent { finish(id, .unavailable) }
            }
        }
    }

    /// The subscription to `channel` is confirmed: the fetches that waited for it go.
    func subscribed(_ channel: [UInt8]) {
        for (id, fetch) in fetches where fetch.channel == channel && !fetch.sent { sendFetch(id) }
    }


    /// The subscription to `channel` ended (nil: every channel of instance `shard`, its link lost): the hub forgets
    /// what it kept of those channels' live streams. A fetch of a channel that still has readers here (it is being
    /// subscribed again) starts over once the new subscription is confirmed; every other fetch fails.
    func unsubscribed(_ channel: [UInt8]?, shard: Int) {
        let affected = fetches.filter { $0.value.shard == shard && (channel == nil || $0.value.channel == channel) }
        for (id, fetch) in affected {
            if channel != nil && hasReaders(fetch.channel) {
                // Under a new id: a late reply or marker of the old sending finds nothing.
                fetches[id] = nil
                fetches[nextFetch] = PendingFetch(
                    channel: fetch.channel, shard: fetch.shard, after: fetch.after, count: fetch.count,
                    completions: fetch.completions)
                nextFetch += 1
            } else {
                fetches[id] = nil
                for completion in fetch.completions { completion(.unavailable) }
            }
        }
        subscriptionEnded?(channel, shard)
    }

    private func sendFetch(_ id: UInt64) {
        guard let fetch = fetches[id] else { return }
        fetches[id]?.sent = true
        let keys = historyKeys(fetch.channel)
        let arguments: [[UInt8]] = [
            Self.evalsha, HistoryScripts.fetchSHA, Array("3".utf8), keys[0], keys[1], keys[2],
            Array(String(fetch.after).utf8), Array(String(fetch.count).utf8),
            BrokerEnvelope.sealFetchMarker(origin: serverID, id: id),
        ]
        let publisher = shards[fetch.shard].publisher
        let sent = publisher.command(arguments) { [unowned self] reply in
            guard fetches[id] != nil else { return }
            guard let reply, reply.pointee.type != REDIS_REPLY_ERROR, let result = Self.fetched(reply) else {
                if let reply, Self.text(reply).hasPrefix("NOSCRIPT") { loadScripts(on: publisher) }
                finish(id, .unavailable)
                return
            }
            fetches[id]?.result = result
            // An empty answer published its marker too; either way the marker decides when it joins.
            if fetches[id]?.markerSeen == true { finish(id, result) }
        }
        if !sent { finish(id, .unavailable) }
    }

    private func finish(_ id: UInt64, _ result: RemoteHistory) {
        guard let fetch = fetches.removeValue(forKey: id) else { return }
        for completion in fetch.completions { completion(result) }
    }

    /// A positioned publish or a fetch marker from a subscribing link.
    func receivedHistory(_ channel: [UInt8], _ payload: UnsafeRawBufferPointer) {
        if let marker = BrokerEnvelope.openFetchMarker(payload) {
            guard marker.origin == serverID, fetches[marker.id] != nil else { return }
            fetches[marker.id]?.markerSeen = true
            if let result = fetches[marker.id]?.result { finish(marker.id, result) }
            return
        }
        guard let opened = BrokerEnvelope.openPositioned(payload) else {
            status.malformed.add(fromOwner: 1)
            return
        }
        if opened.origin != serverID { status.received.add(fromOwner: 1) }
        deliverPositioned?(channel, opened)
    }

    // MARK: Replies

    static func text(_ reply: UnsafeMutablePointer<redisReply>) -> String {
        guard let string = reply.pointee.str else { return "" }
        return String(decoding: UnsafeRawBufferPointer(start: string, count: reply.pointee.len), as: UTF8.self)
    }

    private static func bytes(_ reply: UnsafeMutablePointer<redisReply>?) -> UnsafeRawBufferPointer? {
        guard let reply, reply.pointee.type == REDIS_REPLY_STRING || reply.pointee.type == REDIS_REPLY_STATUS
        else { return nil }
        return UnsafeRawBufferPointer(start: reply.pointee.str, count: reply.pointee.len)
    }

    private static func number(_ reply: UnsafeMutablePointer<redisReply>?) -> UInt64? {
        guard let reply else { return nil }
        if reply.pointee.type == REDIS_REPLY_INTEGER { return UInt64(exactly: reply.pointee.integer) }
        return bytes(reply).flatMap { UInt64(String(decoding: $0, as: UTF8.self)) }
    }

    private static func elements(_ reply: UnsafeMutablePointer<redisReply>?) -> [UnsafeMutablePointer<redisReply>?]? {
        guard let reply, reply.pointee.type == REDIS_REPLY_ARRAY else { return nil }
        return (0..<reply.pointee.elements).map { reply.pointee.element[$0] }
    }

    /// The fetch script's answer; nil when it is not one.
    static func fetched(_ reply: UnsafeMutablePointer<redisReply>) -> RemoteHistory? {
        guard let parts = elements(reply) else { return nil }
        if parts.isEmpty { return RemoteHistory.none }
        guard parts.count == 4, let epochBytes = bytes(parts[0]), epochBytes.count == BrokerEnvelope.epochSize,
            let last = number(parts[1]), let now = number(parts[2]), let entries = elements(parts[3])
        else { return nil }
        var history = RemoteHistory.Found(
            epoch: Epoch(String(decoding: epochBytes, as: UTF8.self)), last: last, now: now, messages: [])
        for entry in entries {
            // [id "<offset>-0", [field, value, ...]]
            guard let pair = elements(entry), pair.count == 2, let id = bytes(pair[0]),
                let offset = UInt64(String(decoding: id.prefix { $0 != UInt8(ascii: "-") }, as: UTF8.self)),
                let fields = elements(pair[1])
            else { return nil }
            var time: UInt64?
            var frame: [UInt8]?
            var index = 0
            while index + 1 < fields.count {
                let name = bytes(fields[index]).map { Array($0) }
                if name == Array("t".utf8) { time = number(fields[index + 1]) }
                if name == Array("f".utf8) { frame = bytes(fields[index + 1]).map { Array($0) } }
                index += 2
            }
            guard let time, let frame else { return nil }
            history.messages.append((offset, time, frame))
        }
        // Read newest first (so that it always reaches the last offset); kept oldest first.
        history.messages.reverse()
        return .found(history)
    }
}
