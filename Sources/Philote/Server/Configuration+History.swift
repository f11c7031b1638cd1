extension Configuration {
    /// What each loop's history store may keep; nil with history off. Every loop gets an equal share of
    /// `HISTORY_MAX_MEMORY`, since channels are spread evenly over the loops that own them.
    func historySettings(loops: Int) -> HistorySettings? {
        guard historySize > 0 else { return nil }
        return HistorySettings(size: historySize, ttl: historyTTL, maxMemory: max(historyMaxMemory / loops, 1))
    }
}
