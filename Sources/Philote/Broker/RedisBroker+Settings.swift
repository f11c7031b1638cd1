extension RedisBroker {
    /// What the broker needs to know, as plain values: the server fills it in from its configuration, so the
    /// broker depends on no server type.
    struct Settings: Sendable {
        /// One per shard, in `REDIS_URL` order (the order every server hashes channels over).
        var endpoints: [RedisEndpoint]
        /// Put before every client channel to make its Redis channel name.
        var prefix: String
        /// Bytes that may wait for one instance's answer before publishes toward it are dropped.
        var maxPending: Int
        /// Milliseconds to connect, and for Redis to answer, before a link is dropped and retried.
        var timeout: UInt64
        /// With history on: what each channel's stream keeps in Redis (`HISTORY_SIZE`, `HISTORY_TTL` in ms).
        var history: (size: Int, ttl: UInt64)? = nil
    }
}
