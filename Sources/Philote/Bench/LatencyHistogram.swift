/// Latencies in nanoseconds, counted in log-linear buckets (as HdrHistogram does): values below 256 exactly,
/// then 128 buckets per power of two, so a reported value is within 1/256 of the true one (better than two
/// significant digits) over the whole range, in a fixed 58 KiB. Recording is an index computation and an
/// increment, so one histogram per event loop takes every delivery; loops' histograms are merged to report.
public struct LatencyHistogram: Sendable, Equatable {
    /// Buckets per power of two above the exact range; the relative width of a bucket is 1/subBuckets.
    static let subBuckets = 128
    static let exactLimit: UInt64 = 256
    static let bucketCount = 256 + (63 - 8 + 1) * 128

    public private(set) var counts: [UInt64]
    public private(set) var count: UInt64 = 0
    /// Exact extremes and sum, kept beside the buckets: the max is the figure people read first.
    public private(set) var min: UInt64 = .max
    public private(set) var max: UInt64 = 0
    public private(set) var sum: UInt64 = 0

    public init() {
        counts = [UInt64](repeating: 0, count: Self.bucketCount)
    }

    /// The bucket that holds `value`.
    @inline(__always)
    static func index(of value: UInt64) -> Int {
        if value < exactLimit { return Int(value) }
        let msb = 63 - value.leadingZeroBitCount
        return 256 + (msb - 8) * subBuckets + Int(value >> UInt64(msb - 7)) - subBuckets
    }

    /// The smallest and largest value that fall in bucket `index`.
    static func range(of index: Int) -> ClosedRange<UInt64> {
        if index < 256 { return UInt64(index)...UInt64(index) }
        let msb = (index - 256) / subBuckets + 8
        let mantissa = UInt64((index - 256) % subBuckets + subBuckets)
        let low = mantissa << UInt64(msb - 7)
        return low...(low + (1 << UInt64(msb - 7)) - 1)
    }

    @inline(__always)
    public mutating func record(_ value: UInt64) {
        counts[Self.index(of: value)] &+= 1
        count &+= 1
        sum &+= value
        if value > max { max = value }
        if value < min { min = value }
    }

    public mutating func merge(_ other: LatencyHistogram) {
        guard other.count > 0 else { return }
        for index in counts.indices where other.counts[index] != 0 { counts[index] &+= other.counts[index] }
        count &+= other.count
        sum &+= other.sum
        max = Swift.max(max, other.max)
        min = Swift.min(min, other.min)
    }

    /// The value at quantile `q` (0...1): the smallest recorded value with at least q·count values at or
    /// below it, as its bucket's midpoint, kept within the exact min and max. 0 when empty.
    public func value(atQuantile q: Double) -> UInt64 {
        guard count > 0 else { return 0 }
        if q >= 1 { return max }
        let rank = Swift.max(1, UInt64((q * Double(count)).rounded(.up)))
        var seen: UInt64 = 0
        for index in counts.indices where counts[index] != 0 {
            seen += counts[index]
            if seen >= rank {
                let bucket = Self.range(of: index)
                let middle = bucket.lowerBound + (bucket.upperBound - bucket.lowerBound) / 2
                return Swift.min(Swift.max(middle, min), max)
            }
        }
        return max
    }

    public var mean: Double { count == 0 ? 0 : Double(sum) / Double(count) }
}
