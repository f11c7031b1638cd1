extension Configuration {
    /// The `REDIS_*` settings as the broker takes them.
    var brokerSettings: RedisBroker.Settings {
        RedisBroker.Settings(
            endpoints: redisEndpoints, prefix: redisPrefix, maxPending: redisMaxPending, timeout: redisTimeout,
            history: historySize > 0 ? (historySize, historyTTL) : nil)
    }
}
