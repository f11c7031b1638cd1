import Synchronization
import Testing

@testable import Philote

@Suite struct PublishTallyTests {
    @Test func completesOnceWithTheSumAfterTheLastReport() {
        let result = Mutex<[Int]>([])
        let tally = PublishTally(reports: 3, initial: 1) { total in result.withLock { $0.append(total) } }
        tally.report(2)
        tally.report(0)
        #expect(result.withLock { $0 }.isEmpty)
        tally.report(4)
        #expect(result.withLock { $0 } == [7])
    }

    @Test func reportsFromManyThreads() async {
        let result = Mutex<[Int]>([])
        let tally = PublishTally(reports: 400, initial: 0) { total in result.withLock { $0.append(total) } }
        await withTaskGroup(of: Void.self) { group in
            for index in 0..<400 { group.addTask { tally.report(index % 3) } }
        }
        #expect(result.withLock { $0 } == [(0..<400).reduce(0) { $0 + $1 % 3 }])
    }
}
