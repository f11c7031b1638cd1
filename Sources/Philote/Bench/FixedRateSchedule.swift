/// The open-loop clock of one publisher at a fixed rate: message k is due at `start + k·interval`, whatever
/// happened to earlier ones. `due(at:)` says how many have come due since the last call, so a loop that
/// wakes late (timers have millisecond resolution, a busy loop wakes later) sends them together and the
/// offered rate holds on average.
public struct FixedRateSchedule: Sendable, Equatable {
    public let interval: UInt64
    public private(set) var nextDue: UInt64

    /// `interval` nanoseconds between messages, the first due at `start`.
    public init(interval: UInt64, start: UInt64) {
        self.interval = Swift.max(1, interval)
        nextDue = start
    }

    /// Messages due at `now` not yet taken; advances past them.
    public mutating func due(at now: UInt64) -> UInt64 {
        guard now >= nextDue else { return 0 }
        let count = (now - nextDue) / interval + 1
        nextDue += count * interval
        return count
    }
}
