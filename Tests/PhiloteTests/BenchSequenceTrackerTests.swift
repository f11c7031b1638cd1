import Testing

@testable import Philote

@Suite struct BenchSequenceTrackerTests {
    private func track(_ sequences: [UInt64]) -> SequenceTracker {
        var tracker = SequenceTracker()
        for sequence in sequences { tracker.record(sequence) }
        return tracker
    }

    @Test func inOrderWithNothingMissing() {
        let tracker = track(Array(100..<200))
        #expect(tracker.received == 100)
        #expect(tracker.duplicates == 0)
        #expect(tracker.lost(ofSent: 100) == 0)
    }

    @Test func gapsCountAsLost() {
        let sent = Array(UInt64(0)..<1000)
        let tracker = track(sent.filter { $0 % 10 != 3 })
        #expect(tracker.lost(ofSent: 1000) == 100)
        #expect(tracker.duplicates == 0)
    }

    @Test func theFirstAndLastMessagesMissingCountToo() {
        // The publisher sent 0...9 in the window; the subscriber got 2...7.
        let tracker = track(Array(2...7))
        #expect(tracker.lost(ofSent: 10) == 4)
    }

    @Test func duplicatesAreCountedOnce() {
        let tracker = track([0, 1, 1, 2, 3, 3, 3, 4])
        #expect(tracker.received == 5)
        #expect(tracker.duplicates == 3)
        #expect(tracker.lost(ofSent: 5) == 0)
    }

    @Test func aLateArrivalFillsItsGapAndIsNotADuplicate() {
        let tracker = track([0, 1, 3, 4, 2, 2, 5])
        #expect(tracker.received == 6)
        #expect(tracker.duplicates == 1)
        #expect(tracker.lost(ofSent: 6) == 0)
    }

    @Test func anEarlierFirstMessageArrivingLateCounts() {
        let tracker = track([5, 6, 4, 3])
        #expect(tracker.received == 4)
        #expect(tracker.duplicates == 0)
    }

    @Test func nothingReceivedIsAllLost() {
        #expect(SequenceTracker().lost(ofSent: 42) == 42)
    }
}
