/// A binary min-heap of deadlines. Cancelling is lazy: an entry names its handler by descriptor and id,
/// and a handler that no longer wants it ignores it, so scheduling is O(log n) and nothing is searched.
struct TimerHeap {
    struct Entry {
        var deadline: UInt64
        var fd: Int32
        var handlerID: UInt64
    }

    private(set) var entries: [Entry] = []

    var isEmpty: Bool { entries.isEmpty }
    var count: Int { entries.count }
    var earliest: UInt64? { entries.first?.deadline }

    mutating func push(_ entry: Entry) {
        entries.append(entry)
        var child = entries.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            if entries[parent].deadline <= entries[child].deadline { break }
            entries.swapAt(parent, child)
            child = parent
        }
    }

    /// Removes and returns the earliest entry if it is due at `now`.
    mutating func popDue(now: UInt64) -> Entry? {
        guard let first = entries.first, first.deadline <= now else { return nil }
        let last = entries.removeLast()
        if entries.isEmpty { return first }
        entries[0] = last
        var parent = 0
        while true {
            let left = 2 * parent + 1
            guard left < entries.count else { break }
            let right = left + 1
            let smaller = right < entries.count && entries[right].deadline < entries[left].deadline ? right : left
            if entries[parent].deadline <= entries[smaller].deadline { break }
            entries.swapAt(parent, smaller)
            parent = smaller
        }
        return first
    }
}
