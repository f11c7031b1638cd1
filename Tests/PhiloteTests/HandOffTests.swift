import Synchronization
import Testing

@testable import Philote

/// The hand-off of publishes between loops is bounded: a loop that does not run its tasks is handed at most its
/// budget, what would pass it is dropped and counted, and the budget comes back once the loop runs.
@Suite struct HandOffTests {
    @Test func aStalledLoopIsHandedNoMoreThanItsBudget() throws {
        let loops = [try EventLoop(index: 0), try EventLoop(index: 1)]
        let metrics = [LoopMetrics(), LoopMetrics()]
        let budgets = loops.map { _ in HandOffBudget(limit: 10_000) }
        let outbox = Outbox(
            origin: loops[0], loops: loops, locals: loops.map { _ in LocalHub() }, budgets: budgets,
            metrics: metrics[0])
        let payload = [UInt8](repeating: 0x61, count: 1000)
        let frame = payload.withUnsafeBytes { FrameWriter.frame(.text, payload: $0) }
        let parcel = Parcel(delivery: Delivery(plain: frame), channel: Array("c".utf8), sequence: 1, tally: nil, fromBroker: false)
        let perParcel = parcel.cost
        let answered = Atomic<Int>(-1)
        // Loop 1 never runs meanwhile: a stalled loop.
        for number in 1...100 {
            let tally = number == 100 ? PublishTally(reports: 1, initial: 0) { answered.store($0, ordering: .relaxed) } : nil
            outbox.add(
                Parcel(
                    delivery: Delivery(plain: frame), channel: Array("c".utf8), sequence: UInt64(number), tally: tally,
                    fromBroker: false))
            outbox.flush()
        }
        let handed = 10_000 / perParcel
        #expect(budgets[1].current == handed * perParcel)
        #expect(metrics[0].handOffDropped.load(ordering: .relaxed) == UInt64(100 - handed))
        // A dropped HTTP publish is still answered: no reader was reached on that loop.
        #expect(answered.load(ordering: .relaxed) == 0)

        // Once loop 1 runs what it was handed (then its stop, queued after), the budget is back.
        loops[1].stop()
        loops[1].run()
        #expect(budgets[1].current == 0)
        outbox.add(parcel)
        outbox.flush()
        #expect(budgets[1].current == perParcel)
    }

    @Test func takingPastTheLimitTakesNothing() {
        let budget = HandOffBudget(limit: 100)
        #expect(budget.take(60))
        #expect(!budget.take(41))
        #expect(budget.current == 60)
        #expect(budget.take(40))
        budget.giveBack(100)
        #expect(budget.current == 0)
    }
}
