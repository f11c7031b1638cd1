/// Joins servers that share Redis into one hub. Lives on one event loop (the hub's loop 0): every other
/// loop reaches it through that loop's inbox.
///
/// - A publish is delivered locally by the hub as always and handed here once; it goes out as one
///   PUBLISH of an envelope (origin server id + the encoded frame) to the channel's instance.
/// - The server SUBSCRIBEs to a channel while some loop of it has a reader of the channel (interest
///   counted per loop), so it receives only what its clients read.
/// - Messages from other servers go to `deliver` (which hands them to every loop's readers); the copy
///   of this server's own publish that Redis echoes back is skipped by origin id.
/// - The queue toward each instance is bounded by `maxPending` bytes awaiting Redis's answer; beyond it,
///   and while an instance is down, publishes are dropped and counted (the loop never blocks or grows).
final class RedisBroker: @unchecked Sendable {
    let status: BrokerStatus
    let serverID = ServerID.random()
    let loop: EventLoop
    let logger: any LogSink
    let prefix: [UInt8]
    let ring: ShardRing
    let maxPending: Int
    /// REDIS_TIMEOUT (ms): also how long a history fetch waits for an instance that is not connected yet.
    let timeout: UInt64
    private(set) var shards: [RedisShard] = []
    /// How many loops have readers of each channel; a channel is present while any does.
    private var readers: [[UInt8]: Int] = [:]
    /// The subscribing links' own channel (see RedisShard); unique per server, outside the client channels'
    /// reach unless a client guesses a random 128-bit id.
    let controlKey: [UInt8]
    /// Set once, before `start`: hands another server's message to this server's readers.
    var deliver: ((_ channel: [UInt8], _ message: BrokerEnvelope.Opened) -> Void)?
    private var dropping = false
    /// With history on (`settings.history`): what the channels' streams keep, the positioned messages' receiver,
    /// and the fetches in flight (see RedisBroker+History.swift).
    let history: (size: Int, ttl: UInt64)?
    var deliverPositioned: ((_ channel: [UInt8], _ message: BrokerEnvelope.OpenedPositioned) -> Void)?
    /// Told when this server's subscription to a channel ends (nil: to every channel of the instance with that
    /// index): from then on it misses that channel's messages.
    var subscriptionEnded: ((_ channel: [UInt8]?, _ shard: Int) -> Void)?
    var fetches: [UInt64: PendingFetch] = [:]
    var nextFetch: UInt64 = 1

    init(settings: Settings, loop: EventLoop, logger: any LogSink) {
        self.loop = loop
        self.logger = logger
        prefix = Array(settings.prefix.utf8)
        maxPending = settings.maxPending
        timeout = settings.timeout
        history = settings.history
        let endpoints = settings.endpoints
        ring = ShardRing(labels: endpoints.map(\.label))
        status = BrokerStatus(shardCount: endpoints.count)
        var control = Array("philote-server:".utf8)
        let hex = Array("0123456789abcdef".utf8)
        withUnsafeBytes(of: serverID) { id in
            for byte in id { control += [hex[Int(byte >> 4)], hex[Int(byte & 15)]] }
        }
        controlKey = control
        for (index, endpoint) in endpoints.enumerated() {
            let publisher = RedisLink(
                endpoint: endpoint, role: "publish", loop: loop, logger: logger, timeout: settings.timeout, pings: true)
            let subscriber = RedisLink(
                endpoint: endpoint, role: "subscribe", loop: loop, logger: logger, timeout: settings.timeout,
                pings: false)
            shards.append(RedisShard(index: index, publisher: publisher, subscriber: subscriber, broker: self))
        }
    }

    /// Connects every instance; call on `loop`.
    func start() {
        for shard in shards { shard.start() }
    }

    // MARK: Interest

    /// A loop gained its first reader of `channel` (`present`) or lost its last one. On `loop`.
    func readersChanged(_ channel: [UInt8], present: Bool) {
        let before = readers[channel] ?? 0
        let after = before + (present ? 1 : -1)
        readers[channel] = after > 0 ? after : nil
        if (before == 0) != (after <= 0) { shards[ring.shard(for: channel)].reconcile(channel) }
    }

    func hasReaders(_ channel: [UInt8]) -> Bool { readers[channel] != nil }

    func channelsWithReaders(onShard index: Int) -> [[UInt8]] {
        readers.keys.filter { ring.shard(for: $0) == index }
    }

    func key(for channel: [UInt8]) -> [UInt8] { prefix + channel }

    /// The client channel a Redis channel name stands for; nil for names outside the prefix.
    func channel(forKey key: UnsafeRawBufferPointer) -> [UInt8]? {
        guard key.starts(with: prefix) else { return nil }
        return Array(key[prefix.count...])
    }

    // MARK: Messages

    /// Sends a local publish to the other servers. On `loop`.
    func publish(_ frame: SharedFrame, to channel: [UInt8]) {
        let shard = shards[ring.shard(for: channel)]
        guard shard.publisher.isReady else {
            status.drop(.disconnected)
            return
        }
        // Checked before the envelope is made: a publish that is dropped costs no allocation.
        guard shard.publisher.pendingBytes + BrokerEnvelope.headerSize + frame.length <= maxPending else {
            status.drop(.queueFull)
            if !dropping {
                dropping = true
                logger.warning(
                    "redis is not keeping up: dropping publishes toward it",
                    ["redis": shard.label, "pending_bytes": String(shard.publisher.pendingBytes)])
            }
            return
        }
        if dropping {
            dropping = false
            logger.info("redis is keeping up again", ["redis": shard.label])
        }
        if shard.publisher.publish(channel: key(for: channel), payload: BrokerEnvelope.seal(frame, origin: serverID)) {
            status.published.add(fromOwner: 1)
        } else {
            status.drop(.disconnected)
        }
    }

    /// A message pushed by Redis on a subscribing link.
    func received(key: UnsafeRawBufferPointer, payload: UnsafeRawBufferPointer) {
        guard let channel = channel(forKey: key) else { return }
        if history != nil, payload.count > 3, payload[2] != BrokerEnvelope.marker[2] {
            receivedHistory(channel, payload)
            return
        }
        guard let opened = BrokerEnvelope.open(payload) else {
            status.malformed.add(fromOwner: 1)
            return
        }
        if opened.origin == serverID { return }
        status.received.add(fromOwner: 1)
        deliver?(channel, opened)
    }
}
