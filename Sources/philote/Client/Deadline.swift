/// A point in time on the monotonic clock, as poll(2) timeouts need it: every wait of the client is bounded
/// by one of these, so a silent server can never hang it.
struct Deadline {
    let instant: ContinuousClock.Instant

    init(after duration: Duration) {
        instant = ContinuousClock.now.advanced(by: duration)
    }

    var hasPassed: Bool { ContinuousClock.now >= instant }

    /// Milliseconds left for poll(2), rounded up so a wait never ends just before the deadline; 0 once past.
    var remainingMilliseconds: Int32 {
        let left = ContinuousClock.now.duration(to: instant)
        if left <= .zero { return 0 }
        let (seconds, attoseconds) = left.components
        let milliseconds = seconds * 1000 + (attoseconds + 999_999_999_999_999) / 1_000_000_000_000_000
        return Int32(clamping: milliseconds)
    }

    /// The sooner of two optional deadlines as a poll(2) timeout (-1: wait without a bound).
    static func pollTimeout(_ deadlines: Deadline?...) -> Int32 {
        let present = deadlines.compactMap { $0 }
        guard let soonest = present.min(by: { $0.instant < $1.instant }) else { return -1 }
        return soonest.remainingMilliseconds
    }
}
