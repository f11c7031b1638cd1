import Philote

/// A copy of one loop's figures, handed to the coordinator's thread.
struct BenchSnapshot: Sendable {
    var generation: UInt64
    var tally: BenchTally
    var latency: LatencyHistogram
    /// Open subscribers per channel (index: channel).
    var subscribersOpen: [Int]
    /// Connections of this loop that are settled (open, failed or closed), subscribers and publishers.
    var subscribersSettled: Int
    var publishersSettled: Int
    /// Measured messages sent, per publisher of this loop.
    var measuredSent: [(publisher: Int, count: UInt64)]
    /// Final snapshot only: each subscriber that opened, its channel and what it received per publisher of it.
    var trackers: [(channel: Int, trackers: [SequenceTracker])]
}
