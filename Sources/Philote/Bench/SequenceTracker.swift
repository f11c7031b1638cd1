/// What one subscriber has received of one publisher's measured messages, to count losses and duplicates
/// exactly. Philote keeps each publisher's order on a channel, so the common case is the next number, one
/// comparison; a gap is remembered (up to `maxGaps` numbers) so that a late arrival counts as received, not
/// as a duplicate. Losses are what the publisher sent in the window less the distinct numbers received.
public struct SequenceTracker: Sendable, Equatable {
    /// Remembered missing numbers per tracker; past it a gap only counts, and a number from it that still
    /// comes counts as a duplicate. Bounded so that a server dropping much cannot grow the client's memory.
    public static let maxGaps = 1024

    /// Distinct numbers received.
    public private(set) var received: UInt64 = 0
    public private(set) var duplicates: UInt64 = 0
    /// The lowest number received, and one past the highest.
    private var lowest: UInt64 = .max
    private var next: UInt64 = 0
    private var gaps: Set<UInt64> = []

    public init() {}

    public mutating func record(_ sequence: UInt64) {
        if received == 0 {
            received = 1
            lowest = sequence
            next = sequence &+ 1
            return
        }
        if sequence == next {
            next &+= 1
            received += 1
        } else if sequence > next {
            var missing = next
            while missing < sequence && gaps.count < Self.maxGaps {
                gaps.insert(missing)
                missing += 1
            }
            next = sequence + 1
            received += 1
        } else if sequence < lowest {
            // Earlier than anything seen: a reordered first message (rare); the numbers between are gaps.
            var missing = sequence + 1
            while missing < lowest && gaps.count < Self.maxGaps {
                gaps.insert(missing)
                missing += 1
            }
            lowest = sequence
            received += 1
        } else if gaps.remove(sequence) != nil {
            received += 1
        } else {
            duplicates += 1
        }
    }

    /// Messages the publisher sent in the window (`sent`) that never arrived.
    public func lost(ofSent sent: UInt64) -> UInt64 {
        sent > received ? sent - received : 0
    }
}
