import Synchronization

/// One loop's count of a publisher's deliveries, written by that loop only and read by the publisher's
/// loop. A class each, so that counters written by different loops never share a cache line's worth of array.
final class BenchCounter: Sendable {
    let value = Atomic<UInt64>(0)
}
