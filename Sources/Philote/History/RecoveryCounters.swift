import Synchronization

/// How recoveries went, server-wide, for `/metrics`: one count per answer (`HistoryRead.Status`), and the
/// messages replayed. Shared by the loops: recoveries happen per connection and replays per batch, not per
/// delivered message, so a lock costs nothing that matters.
final class RecoveryCounters: Sendable {
    /// In `outcomes` order.
    private let answers = Mutex<[UInt64]>(Array(repeating: 0, count: 5))
    private let replayedMessages = Atomic<UInt64>(0)

    /// The label values of the answers, in the order `answered` lists them.
    static let outcomes = ["ok", "new", "epoch_changed", "too_old", "ahead"]

    init() {}

    func count(_ status: HistoryRead.Status) {
        let index =
            switch status {
            case .continues: 0
            case .new: 1
            case .epochChanged: 2
            case .tooOld: 3
            case .ahead: 4
            }
        answers.withLock { $0[index] += 1 }
    }

    func replayed(_ count: Int) {
        replayedMessages.add(UInt64(count), ordering: .relaxed)
    }

    var answered: [UInt64] { answers.withLock { $0 } }
    var replayed: UInt64 { replayedMessages.load(ordering: .relaxed) }
}
