#if canImport(Glibc)
    import Glibc
#endif

/// A connection's queued output: references to shared frames, written front to back with `writev`.
/// A partly written frame stays at the front with an offset, so partial writes resume in place.
struct OutboundQueue {
    private var frames: [SharedFrame] = []
    private var head = 0
    /// Bytes of `frames[head]` already written.
    private var headOffset = 0
    private(set) var queuedBytes = 0

    var isEmpty: Bool { head == frames.count }

    mutating func append(_ frame: SharedFrame) {
        frames.append(frame)
        queuedBytes += frame.length
    }

    /// Fills `vectors` with the unwritten bytes, at most `capacity` entries; returns (entries, bytes).
    func gather(into vectors: UnsafeMutablePointer<iovec>, capacity: Int) -> (count: Int, bytes: Int) {
        var count = 0
        var bytes = 0
        var index = head
        while index < frames.count && count < capacity {
            let frame = frames[index]
            let skip = index == head ? headOffset : 0
            vectors[count] = iovec(iov_base: frame.bytes + skip, iov_len: frame.length - skip)
            bytes += frame.length - skip
            count += 1
            index += 1
        }
        return (count, bytes)
    }

    /// Drops `written` bytes from the front.
    mutating func consume(_ written: Int) {
        var remaining = written
        queuedBytes -= written
        while remaining > 0 {
            let available = frames[head].length - headOffset
            if remaining >= available {
                remaining -= available
                head += 1
                headOffset = 0
            } else {
                headOffset += remaining
                remaining = 0
            }
        }
        if head == frames.count {
            // A small list keeps its storage (a few pointers) so steady traffic allocates nothing per
            // tick; a large one is released so that a burst does not stay held by an idle connection.
            if frames.capacity <= 64 {
                frames.removeAll(keepingCapacity: true)
            } else {
                frames = []
            }
            head = 0
        } else if head >= 64 && head * 2 >= frames.count {
            frames.removeSubrange(0..<head)
            head = 0
        }
    }

    /// Frees everything not yet started; a frame already partly on the wire stays, so the stream stays
    /// well-formed for the close frame that follows.
    mutating func dropUnsent() {
        guard !isEmpty else { return }
        if headOffset > 0 {
            let started = frames[head]
            frames = [started]
            queuedBytes = started.length - headOffset
        } else {
            frames = []
            queuedBytes = 0
        }
        head = 0
    }

    mutating func removeAll() {
        frames = []
        head = 0
        headOffset = 0
        queuedBytes = 0
    }
}
