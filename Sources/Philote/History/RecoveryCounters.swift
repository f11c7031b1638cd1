import Synchronization

/// How recoveries went, server-wide, for `/metrics`: one count per answer (`HistoryRead.Status`), and the
/// messages replayed. Shared by the loops: recoveries happen per connection and replays per batch, not per
/// delivered message, so a lock costs nothing that matters.
final class RecoveryCounters: Sendable {
    /// In `outcomes` order.
    private let answers = PThreadMutex<[UInt64]>(Array(repeating: 0, count: 6))
    private let replayedMessages = Atomic<UInt64>(0)

    /// The label values of the answers, in the order `answered` lists them.
    static let outcomes = ["ok", "new", "epoch_changed", "too_old", "ahead", "unavailable"]

    init() {}

    /// The answers: each status of a read, or history that Redis could not give.
    enum Outcome {
        case read(HistoryRead.Status)
        case unavailable
    }

    func count(_ status: HistoryRead.Status) {
        count(.read(status))
    }

    func count(_ outcome: Outcome) {
        let index =
            switch outcome {
            case .read(.continues): 0
            case .read(.new): 1
            case .read(.epochChanged): 2
            case .read(.tooOld): 3
            case .read(.ahead): 4
            case .unavailable: 5
            }
        answers.withLock { $0[index] += 1 }
    }

    func replayed(_ count: Int) {
        replayedMessages.add(UInt64(count), ordering: .relaxed)
    }

    var answered: [UInt64] { answers.withLock { $0 } }
    var replayed: UInt64 { replayedMessages.load(ordering: .relaxed) }
}
