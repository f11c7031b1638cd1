import Synchronization

/// What every loop of a bench run reads and the coordinator writes: the phase and the start of the measured
/// window. Atomics, because loops read them per publish.
final class BenchShared: Sendable {
    private let phaseValue = Atomic<Int>(BenchPhase.connecting.rawValue)
    /// CLOCK_MONOTONIC ns; a message sent at or after it in the measuring phase is measured.
    private let windowStart = Atomic<UInt64>(.max)

    var phase: BenchPhase { BenchPhase(rawValue: phaseValue.load(ordering: .acquiring)) ?? .draining }

    func enter(_ phase: BenchPhase) { phaseValue.store(phase.rawValue, ordering: .releasing) }

    /// Opens the measured window at `start`.
    func startMeasuring(at start: UInt64) {
        windowStart.store(start, ordering: .releasing)
        enter(.measuring)
    }

    /// Whether a message sent at `time` belongs to the measured window.
    @inline(__always)
    func isMeasured(sentAt time: UInt64) -> Bool {
        phaseValue.load(ordering: .relaxed) == BenchPhase.measuring.rawValue
            && time >= windowStart.load(ordering: .relaxed)
    }
}
