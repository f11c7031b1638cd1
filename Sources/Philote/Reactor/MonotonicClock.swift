#if canImport(Glibc)
    import Glibc
#endif

/// Milliseconds on CLOCK_MONOTONIC: immune to wall-clock jumps, which is what timeouts need.
public enum MonotonicClock {
    @inline(__always)
    public static func milliseconds() -> UInt64 {
        var spec = timespec()
        clock_gettime(CLOCK_MONOTONIC, &spec)
        return UInt64(spec.tv_sec) &* 1000 &+ UInt64(spec.tv_nsec) / 1_000_000
    }
}
