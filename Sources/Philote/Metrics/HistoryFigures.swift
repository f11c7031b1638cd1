/// History's share of `/metrics` (absent with history off): what the stores hold, and how recoveries went.
public struct HistoryFigures: Sendable, Equatable {
    public var channels = 0
    public var messages = 0
    public var bytes = 0
    /// Answers to `since`, in `RecoveryCounters.outcomes` order.
    public var recoveries: [UInt64] = []
    public var replayed: UInt64 = 0

    public init() {}

    init(statistics: [HistoryStatistics], counters: RecoveryCounters) {
        for store in statistics {
            channels += store.channels
            messages += store.messages
            bytes += store.bytes
        }
        recoveries = counters.answered
        replayed = counters.replayed
    }
}
