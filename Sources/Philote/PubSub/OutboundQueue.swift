#if canImport(Glibc)
    import Glibc
#endif

/// A connection's queued output: shared frames, written front to back with `writev`. A partly written
/// frame stays at the front with an offset, so partial writes resume in place.
///
/// Entries are unmanaged references, so that queuing a fan-out delivery costs no reference count (an
/// atomic increment and decrement per recipient was most of fan-out's user-space cost). An entry is
/// either *held*: the event loop keeps its frame alive until the end of the tick's flush pass
/// (`EventLoop.keepAlive`), and the queue's connection is flushed in that pass, since queuing marks it dirty;
/// or *owned*: the queue holds a reference of its own. A flush ends with `retainUnsent`, which makes
/// whatever is still queued (a partial write, a full socket buffer) owned, so a frame outlives its tick
/// only through the queue's own reference. Owned entries are always the front of the queue,
/// `head..<ownedEnd`, because only a flush's leftovers become owned and new entries join at the back.
struct OutboundQueue: ~Copyable {
    /// nil until the first frame; kept while small (see `consume`).
    private var storage: UnsafeMutablePointer<Unmanaged<SharedFrame>>?
    private var capacity = 0
    private var end = 0
    private var head = 0
    /// Entries `head..<ownedEnd` hold a reference each; `ownedEnd..<end` are held by the loop.
    private var ownedEnd = 0
    /// Bytes of the entry at `head` already written.
    private var headOffset = 0
    private(set) var queuedBytes = 0
    /// Queued frames that are data messages (`SharedFrame.isMessage`), so that a flush counts the messages it
    /// wrote in full, and never those dropped unwritten.
    private(set) var queuedMessages = 0

    /// Storage of at most this many entries is kept when the queue drains, so that steady traffic
    /// allocates nothing per tick, while a burst does not stay held by an idle connection.
    private static let keptCapacity = 64

    init() {}

    deinit {
        releaseOwned()
        storage?.deallocate()
    }

    var isEmpty: Bool { head == end }

    /// Queues `frame` without retaining it. The caller guarantees that it stays alive until the end of the
    /// loop's current flush pass (`EventLoop.keepAlive`), and that this queue's connection is marked dirty.
    @inline(__always)
    mutating func append(held frame: SharedFrame) {
        if end == capacity { grow() }
        // Safe: `grow` leaves storage allocated with room at `end`.
        (storage.unsafelyUnwrapped + end).initialize(to: Unmanaged.passUnretained(frame))
        end += 1
        queuedBytes += frame.length
        if frame.isMessage { queuedMessages += 1 }
    }

    /// Makes room at the back: slides the live entries to the front when that frees at least half, else
    /// doubles the storage.
    @inline(never)
    private mutating func grow() {
        let live = end - head
        if let storage, head > 0 && live <= capacity / 2 {
            storage.moveInitialize(from: storage + head, count: live)
        } else {
            let newCapacity = max(4, capacity * 2)
            let larger = UnsafeMutablePointer<Unmanaged<SharedFrame>>.allocate(capacity: newCapacity)
            if let storage {
                larger.moveInitialize(from: storage + head, count: live)
                storage.deallocate()
            }
            storage = larger
            capacity = newCapacity
        }
        ownedEnd -= head
        end = live
        head = 0
    }

    /// Fills `vectors` with the unwritten bytes, at most `capacity` entries; returns (entries, bytes).
    func gather(into vectors: UnsafeMutablePointer<iovec>, capacity limit: Int) -> (count: Int, bytes: Int) {
        guard let storage else { return (0, 0) }
        var count = 0
        var bytes = 0
        var index = head
        while index < end && count < limit {
            // Guaranteed: held or owned, every queued frame is alive (see the type's comment).
            let (start, length) = storage[index]._withUnsafeGuaranteedRef { ($0.bytes, $0.length) }
            let skip = index == head ? headOffset : 0
            vectors[count] = iovec(iov_base: start + skip, iov_len: length - skip)
            bytes += length - skip
            count += 1
            index += 1
        }
        return (count, bytes)
    }

    /// Drops `written` bytes from the front; returns how many data messages that finished.
    @inline(__always)
    @discardableResult
    mutating func consume(_ written: Int) -> Int {
        if written == queuedBytes && ownedEnd == head && capacity <= Self.keptCapacity {
            // All of it and nothing owned, the usual case: inline, and without walking the entries.
            let messages = queuedMessages
            queuedBytes = 0
            queuedMessages = 0
            head = 0
            end = 0
            ownedEnd = 0
            headOffset = 0
            return messages
        } else {
            return consumeEntries(written)
        }
    }

    @inline(never)
    private mutating func consumeEntries(_ written: Int) -> Int {
        guard let storage else { return 0 }
        if written == queuedBytes {
            // All of it: no need to walk the entries, except to release owned ones.
            if ownedEnd > head { releaseOwned() }
            let messages = queuedMessages
            queuedBytes = 0
            queuedMessages = 0
            emptied()
            return messages
        }
        var remaining = written
        var messages = 0
        queuedBytes -= written
        while remaining > 0 {
            let entry = storage[head]
            let (length, isMessage) = entry._withUnsafeGuaranteedRef { ($0.length, $0.isMessage) }
            let available = length - headOffset
            if remaining >= available {
                remaining -= available
                if isMessage { messages += 1 }
                if head < ownedEnd { entry.release() }
                head += 1
                headOffset = 0
            } else {
                headOffset += remaining
                remaining = 0
            }
        }
        queuedMessages -= messages
        if ownedEnd < head { ownedEnd = head }
        if head == end { emptied() }
        return messages
    }

    private mutating func emptied() {
        head = 0
        end = 0
        ownedEnd = 0
        headOffset = 0
        if capacity > Self.keptCapacity { freeStorage() }
    }

    /// Takes a reference to every entry the loop still holds: called at the end of each flush, before the
    /// loop lets go of this tick's frames.
    @inline(__always)
    mutating func retainUnsent() {
        if ownedEnd < end { retainHeld() }
    }

    @inline(never)
    private mutating func retainHeld() {
        guard let storage else { return }
        for index in ownedEnd..<end { _ = storage[index].retain() }
        ownedEnd = end
    }

    /// Frees everything not yet started; a frame already partly on the wire stays, so the stream stays
    /// well-formed for the close frame that follows. So do the frames holding the first `committed` unwritten
    /// bytes: what OpenSSL has already sealed into a record it must finish writing (TLS_RECORD_LAYER=openssl
    /// retries a write with at least as many bytes).
    mutating func dropUnsent(keeping committed: Int = 0) {
        guard let storage, !isEmpty else { return }
        var kept = 0
        var covered = 0
        if headOffset > 0 {
            kept = 1
            covered = storage[head]._withUnsafeGuaranteedRef { $0.length } - headOffset
        }
        while head + kept < end && covered < committed {
            covered += storage[head + kept]._withUnsafeGuaranteedRef { $0.length }
            kept += 1
        }
        let keptEnd = head + kept
        if ownedEnd > keptEnd {
            for index in keptEnd..<ownedEnd { storage[index].release() }
            ownedEnd = keptEnd
        }
        end = keptEnd
        queuedBytes = 0
        queuedMessages = 0
        for index in head..<keptEnd {
            let (length, isMessage) = storage[index]._withUnsafeGuaranteedRef { ($0.length, $0.isMessage) }
            queuedBytes += length - (index == head ? headOffset : 0)
            if isMessage { queuedMessages += 1 }
        }
        if capacity > Self.keptCapacity {
            // A slow consumer's backlog may have grown the storage: give it back now.
            let smallerCapacity = max(4, kept)
            let smaller = UnsafeMutablePointer<Unmanaged<SharedFrame>>.allocate(capacity: smallerCapacity)
            smaller.moveInitialize(from: storage + head, count: kept)
            storage.deallocate()
            self.storage = smaller
            capacity = smallerCapacity
            ownedEnd -= head
            end = kept
            head = 0
        }
    }

    mutating func removeAll() {
        releaseOwned()
        freeStorage()
        head = 0
        end = 0
        ownedEnd = 0
        headOffset = 0
        queuedBytes = 0
        queuedMessages = 0
    }

    private func releaseOwned() {
        guard let storage else { return }
        for index in head..<ownedEnd { storage[index].release() }
    }

    private mutating func freeStorage() {
        storage?.deallocate()
        storage = nil
        capacity = 0
    }
}
