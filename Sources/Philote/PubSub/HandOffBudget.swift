import Synchronization

/// The bytes of publishes handed to one event loop that it has not run yet. A loop that stalls (a blocked
/// thread, a debugger) would otherwise let every other loop queue publishes, and the frames they hold, for it
/// without limit: past `limit` the hand-off is dropped and counted instead (`philote_handoff_dropped_total`).
final class HandOffBudget: Sendable {
    /// Far above what a loop that keeps running ever has waiting (one tick of the other loops' publishes), far
    /// below what would hurt a host.
    static let defaultLimit = 64 << 20

    let limit: Int
    private let queued = Atomic<Int>(0)

    init(limit: Int = HandOffBudget.defaultLimit) {
        self.limit = limit
    }

    /// Bytes handed over and not yet run.
    var current: Int { queued.load(ordering: .relaxed) }

    /// Takes `bytes` of the budget; false (nothing taken) when that would pass the limit.
    func take(_ bytes: Int) -> Bool {
        if queued.wrappingAdd(bytes, ordering: .relaxed).newValue > limit {
            queued.wrappingSubtract(bytes, ordering: .relaxed)
            return false
        }
        return true
    }

    func giveBack(_ bytes: Int) {
        queued.wrappingSubtract(bytes, ordering: .relaxed)
    }
}
