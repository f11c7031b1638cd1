extension Configuration {
    /// What the history store may keep; nil with history off.
    var historySettings: HistorySettings? {
        guard historySize > 0 else { return nil }
        return HistorySettings(size: historySize, ttl: historyTTL, maxMemory: historyMaxMemory)
    }
}
