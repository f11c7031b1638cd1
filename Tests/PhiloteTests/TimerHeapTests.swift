import Testing
@testable import Philote

private func entry(_ deadline: UInt64, fd: Int32 = 0, id: UInt64 = 0) -> TimerHeap.Entry {
    TimerHeap.Entry(deadline: deadline, fd: fd, handlerID: id)
}

@Suite struct TimerHeapTests {
    @Test func emptyHeap() {
        var heap = TimerHeap()
        #expect(heap.isEmpty)
        #expect(heap.count == 0)
        #expect(heap.earliest == nil)
        #expect(heap.popDue(now: .max) == nil)
    }

    @Test func popsInDeadlineOrder() {
        var heap = TimerHeap()
        for deadline: UInt64 in [50, 10, 40, 30, 20, 60, 5] { heap.push(entry(deadline, fd: Int32(deadline), id: deadline * 10)) }
        #expect(heap.count == 7)
        #expect(heap.earliest == 5)
        var popped: [TimerHeap.Entry] = []
        while let next = heap.popDue(now: .max) { popped.append(next) }
        #expect(popped.map(\.deadline) == [5, 10, 20, 30, 40, 50, 60])
        #expect(popped.map(\.fd) == [5, 10, 20, 30, 40, 50, 60])
        #expect(popped.map(\.handlerID) == [50, 100, 200, 300, 400, 500, 600])
        #expect(heap.isEmpty)
    }

    @Test func onlyDueEntriesArePopped() {
        var heap = TimerHeap()
        for deadline: UInt64 in [100, 200, 300] { heap.push(entry(deadline)) }
        #expect(heap.popDue(now: 99) == nil)
        #expect(heap.popDue(now: 100)?.deadline == 100)  // due exactly at its deadline
        #expect(heap.popDue(now: 100) == nil)
        #expect(heap.earliest == 200)
        #expect(heap.popDue(now: 250)?.deadline == 200)
        #expect(heap.popDue(now: 250) == nil)
        #expect(heap.count == 1)
    }

    @Test func equalDeadlinesAreAllPopped() {
        var heap = TimerHeap()
        for id in 0..<10 as Range<UInt64> { heap.push(entry(42, fd: Int32(id), id: id)) }
        var ids: [UInt64] = []
        while let next = heap.popDue(now: 42) { ids.append(next.handlerID) }
        #expect(ids.sorted() == Array(0..<10))
    }

    @Test func randomPushesAndPopsMatchASortedReference() {
        var generator = SeededGenerator(seed: 2024)
        var heap = TimerHeap()
        var reference: [UInt64] = []
        var now: UInt64 = 0
        for step in 0..<5000 {
            if Bool.random(using: &generator) || reference.isEmpty {
                let deadline = now + UInt64.random(in: 0...1000, using: &generator)
                heap.push(entry(deadline, id: UInt64(step)))
                reference.append(deadline)
            } else {
                now += UInt64.random(in: 0...300, using: &generator)
                reference.sort()
                var due: [UInt64] = []
                while let next = heap.popDue(now: now) { due.append(next.deadline) }
                let expected = reference.prefix { $0 <= now }
                #expect(due == Array(expected), "step \(step)")
                reference.removeFirst(expected.count)
            }
            #expect(heap.count == reference.count)
            #expect(heap.earliest == reference.min())
        }
        var rest: [UInt64] = []
        while let next = heap.popDue(now: .max) { rest.append(next.deadline) }
        #expect(rest == reference.sorted())
    }

    @Test func monotonicClockDoesNotGoBackwards() {
        let first = MonotonicClock.milliseconds()
        let second = MonotonicClock.milliseconds()
        #expect(second >= first)
    }
}
