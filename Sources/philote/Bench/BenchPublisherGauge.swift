import Philote
import Synchronization

/// The flow control of one publisher at `--rate max`, shared by every loop: how many of its messages each
/// loop's subscribers have received, and whether the publisher waits for them. As in the harness (wsload),
/// a message is in flight until every subscriber of the channel has it, and a publisher keeps at most
/// `--window` in flight; the loop that counts deliveries wakes a waiting publisher, once per tick.
final class BenchPublisherGauge: @unchecked Sendable {
    let deliveredBy: [BenchCounter]
    /// Set by the publisher when its window is full; taken (exchanged to false) by the first loop that
    /// counts a delivery of its messages, which then wakes it.
    let waiting = Atomic<Bool>(false)
    /// The publisher's loop and its wake-up, set once before publishing starts.
    unowned(unsafe) var loop: EventLoop?
    var wake: (() -> Void)?

    init(workers: Int) {
        deliveredBy = (0..<workers).map { _ in BenchCounter() }
    }

    var delivered: UInt64 {
        deliveredBy.reduce(0) { $0 + $1.value.load(ordering: .relaxed) }
    }

    /// From a loop that has just counted deliveries: wakes the publisher if it waits for them.
    func deliveriesCounted(on current: EventLoop) {
        guard waiting.load(ordering: .sequentiallyConsistent),
            waiting.exchange(false, ordering: .sequentiallyConsistent),
            let loop, let wake
        else { return }
        if loop === current {
            wake()
        } else {
            nonisolated(unsafe) let call = wake
            loop.execute { call() }
        }
    }
}
