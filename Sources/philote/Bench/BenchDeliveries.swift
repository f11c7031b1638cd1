import Philote

/// One loop's figures of what its subscribers received: the latency histogram and the counts, per
/// publisher too (which `flush` hands to the publishers' gauges, once per tick for those that changed).
struct BenchDeliveries {
    var latency = LatencyHistogram()
    var deliveredCount: UInt64 = 0
    var deliveredMeasured: UInt64 = 0
    var otherMessages: UInt64 = 0
    var delivered: [UInt64]
    var touched: [Int] = []
    var isTouched: [Bool]
    var isDirty = false

    init(publishers: Int) {
        delivered = [UInt64](repeating: 0, count: publishers)
        isTouched = [Bool](repeating: false, count: publishers)
    }

    /// Counts a delivery of `publisher`'s; true when it is the publisher's first this tick.
    @inline(__always)
    mutating func count(_ publisher: Int) -> Bool {
        deliveredCount += 1
        delivered[publisher] += 1
        guard !isTouched[publisher] else { return false }
        isTouched[publisher] = true
        touched.append(publisher)
        return true
    }
}
