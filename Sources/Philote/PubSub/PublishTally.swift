import Synchronization

/// Adds up how many readers a publish over HTTP reached on every event loop, so that its answer can say
/// so: the origin loop counts its own at once, every other loop reports once per message after
/// delivering, and the last report calls `completion` (on that loop's thread). Per publish, not per
/// recipient: the fan-out itself never touches it.
final class PublishTally: Sendable {
    private let pending: Atomic<Int>
    private let total: Atomic<Int>
    private let completion: @Sendable (Int) -> Void

    /// `reports`: how many `report` calls will come (messages × other loops), at least one.
    init(reports: Int, initial: Int, completion: @escaping @Sendable (Int) -> Void) {
        precondition(reports > 0)
        pending = Atomic(reports)
        total = Atomic(initial)
        self.completion = completion
    }

    func report(_ delivered: Int) {
        total.wrappingAdd(delivered, ordering: .relaxed)
        // Acquire-release on the countdown: the last reporter sees every other loop's addition.
        if pending.wrappingSubtract(1, ordering: .acquiringAndReleasing).newValue == 0 {
            completion(total.load(ordering: .relaxed))
        }
    }
}
