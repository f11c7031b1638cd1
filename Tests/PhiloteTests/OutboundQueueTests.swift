import Testing

@testable import Philote

#if canImport(Glibc)
    import Glibc
#endif

/// A queue's observable state. `#expect` cannot capture a noncopyable value, so tests look at this copy.
private func state(_ queue: borrowing OutboundQueue) -> (pending: [UInt8], queuedBytes: Int, isEmpty: Bool) {
    (pending(queue), queue.queuedBytes, queue.isEmpty)
}

/// What a queue would put on the wire now: its gathered vectors, concatenated.
private func pending(_ queue: borrowing OutboundQueue) -> [UInt8] {
    let vectors = UnsafeMutablePointer<iovec>.allocate(capacity: 1024)
    defer { vectors.deallocate() }
    let (count, bytes) = queue.gather(into: vectors, capacity: 1024)
    var out: [UInt8] = []
    for index in 0..<count {
        let vector = vectors[index]
        out.append(contentsOf: UnsafeRawBufferPointer(start: vector.iov_base, count: vector.iov_len))
    }
    #expect(out.count == bytes)
    return out
}

private func frame(_ byte: UInt8, length: Int) -> SharedFrame {
    SharedFrame.make(bytes: [UInt8](repeating: byte, count: length))
}

@Suite struct OutboundQueueTests {
    /// A flush counts the data messages it wrote in full: not control frames, not a message partly written, not
    /// what a slow consumer's queue drops unwritten.
    @Test func consumingCountsOnlyWholeDataMessagesWritten() {
        var queue = OutboundQueue()
        let message = { (byte: UInt8) in SharedFrame.make(bytes: [0x81, 0x02, byte, byte]) }
        let frames = [
            message(1), SharedFrame.make(bytes: [0x89, 0x00]), message(2), message(3), message(4),
        ]
        for (index, item) in frames.enumerated() {
            if index != 1 { #expect(item.length == 4) }
        }
        // Only frames made as messages count: these bytes look like text frames, but were not made as messages.
        for item in frames { queue.append(held: item) }
        #expect(queue.queuedMessages == 0)
        queue.removeAll()

        let made = [UInt8(1), 2, 3, 4].map { byte in
            [0x81, 0x02, byte, byte].withUnsafeBytes { SharedFrame.make(copying: $0, isMessage: true) }
        }
        let ping = FrameWriter.frame(.ping, payload: UnsafeRawBufferPointer(start: nil, count: 0))
        for item in [made[0], ping, made[1], made[2], made[3]] { queue.append(held: item) }
        #expect(queue.queuedMessages == 4)
        #expect(queue.consume(4) == 1)  // the first message
        #expect(queue.consume(2 + 3) == 0)  // the ping, and most of the second message
        #expect(queue.consume(1) == 1)  // the rest of it
        #expect(queue.consume(2) == 0)  // half of the third
        queue.dropUnsent()  // the fourth goes unwritten; the third, started, stays
        #expect(queue.queuedMessages == 1)
        #expect(queue.consume(2) == 1)
        #expect(queue.isEmpty && queue.queuedMessages == 0)
        queue.retainUnsent()
        #expect(FrameWriter.frame(.text, payload: UnsafeRawBufferPointer(start: nil, count: 0)).isMessage)
        #expect(!FrameWriter.closeFrame(1000).isMessage)
    }

    @Test func heldFramesAreQueuedInOrderAndNotRetained() {
        var queue = OutboundQueue()
        weak var first: SharedFrame?
        weak var second: SharedFrame?
        do {
            // The test plays the loop: it holds the frames for the tick.
            let held = [frame(1, length: 3), frame(2, length: 2)]
            first = held[0]
            second = held[1]
            for item in held { queue.append(held: item) }
            let queued = state(queue)
            #expect(queued.queuedBytes == 5)
            #expect(queued.pending == [1, 1, 1, 2, 2])
            queue.consume(5)
            queue.retainUnsent()
            #expect(state(queue).isEmpty)
        }
        // Written in full within the tick: the queue never took a reference.
        #expect(first == nil)
        #expect(second == nil)
    }

    @Test func whatAFlushLeavesIsRetainedPastTheTick() {
        var queue = OutboundQueue()
        weak var written: SharedFrame?
        weak var partial: SharedFrame?
        weak var unsent: SharedFrame?
        do {
            let held = [frame(1, length: 4), frame(2, length: 4), frame(3, length: 4)]
            written = held[0]
            partial = held[1]
            unsent = held[2]
            for item in held { queue.append(held: item) }
            queue.consume(6)
            queue.retainUnsent()
        }
        #expect(written == nil)
        #expect(partial != nil)
        #expect(unsent != nil)
        let left = state(queue)
        #expect(left.queuedBytes == 6)
        #expect(left.pending == [2, 2, 3, 3, 3, 3])
        do {
            // The next tick queues more behind the owned entries.
            let next = frame(4, length: 1)
            queue.append(held: next)
            #expect(state(queue).pending == [2, 2, 3, 3, 3, 3, 4])
            queue.consume(3)
            queue.retainUnsent()
        }
        #expect(partial == nil)
        #expect(unsent != nil)
        #expect(state(queue).pending == [3, 3, 3, 4])
        queue.consume(4)
        #expect(unsent == nil)
        let drained = state(queue)
        #expect(drained.isEmpty)
        #expect(drained.queuedBytes == 0)
    }

    /// TLS_RECORD_LAYER=openssl: bytes OpenSSL already sealed into a record it must finish writing stay queued,
    /// whole frames of them, and so does a started frame; the rest goes.
    @Test func dropUnsentKeepsWhatWasCommittedToARecord() {
        var queue = OutboundQueue()
        let frames = (1...70).map { frame(UInt8($0), length: 10) }  // more than the storage kept when drained
        for item in frames { queue.append(held: item) }
        queue.consume(5)  // half of the first frame is on the wire
        queue.dropUnsent(keeping: 21)  // its other half, and 16 more bytes: two more frames
        let kept = state(queue)
        #expect(kept.pending == Array(repeating: 1, count: 5) + Array(repeating: 2, count: 10) + Array(repeating: 3, count: 10))
        #expect(kept.queuedBytes == 25)
        queue.consume(25)
        queue.retainUnsent()
        #expect(state(queue).isEmpty)
        withExtendedLifetime(frames) {}
    }

    @Test func dropUnsentKeepsTheStartedFrameOnly() {
        var queue = OutboundQueue()
        weak var started: SharedFrame?
        weak var owned: SharedFrame?
        weak var held: SharedFrame?
        do {
            let first = [frame(1, length: 4), frame(2, length: 4)]
            started = first[0]
            owned = first[1]
            for item in first { queue.append(held: item) }
            queue.consume(1)
            queue.retainUnsent()
        }
        let tick = frame(3, length: 2)
        held = tick
        queue.append(held: tick)
        queue.dropUnsent()
        #expect(owned == nil)
        #expect(started != nil)
        let kept = state(queue)
        #expect(kept.queuedBytes == 3)
        #expect(kept.pending == [1, 1, 1])
        queue.consume(3)
        #expect(started == nil)
        #expect(held != nil)
        _ = tick
    }

    @Test func removeAllAndDeinitReleaseOwnedEntries() {
        weak var a: SharedFrame?
        weak var b: SharedFrame?
        var queue = OutboundQueue()
        do {
            let item = frame(1, length: 2)
            a = item
            queue.append(held: item)
            queue.retainUnsent()
        }
        #expect(a != nil)
        queue.removeAll()
        #expect(a == nil)
        #expect(state(queue).isEmpty)
        do {
            var scoped = OutboundQueue()
            do {
                let item = frame(2, length: 2)
                b = item
                scoped.append(held: item)
                scoped.retainUnsent()
            }
            #expect(b != nil)
            _ = consume scoped
        }
        #expect(b == nil)
    }

    /// A backlog large enough to grow the storage several times, slide it, and give it back on a drop.
    @Test func aBurstGrowsSlidesAndShrinks() {
        var queue = OutboundQueue()
        var model: [UInt8] = []
        var alive: [() -> Bool] = []
        do {
            var tick: [SharedFrame] = []
            for index in 0..<300 {
                let item = frame(UInt8(index % 251), length: 3)
                tick.append(item)
                alive.append({ [weak item] in item != nil })
                queue.append(held: item)
                model.append(contentsOf: [UInt8](repeating: UInt8(index % 251), count: 3))
            }
            queue.consume(500)
            model.removeFirst(500)
            queue.retainUnsent()
        }
        // 166 frames written in full, one partly, the rest owned.
        #expect(alive.prefix(166).allSatisfy { !$0() })
        #expect(alive.dropFirst(166).allSatisfy { $0() })
        do {
            var tick: [SharedFrame] = []
            // Appending past the end slides the live entries to the front or grows.
            for _ in 0..<200 {
                let item = frame(7, length: 1)
                tick.append(item)
                queue.append(held: item)
                model.append(7)
            }
            let bytes = pending(queue)
            #expect(bytes == model)
            queue.retainUnsent()
        }
        queue.dropUnsent()
        do {
            let bytes = pending(queue)
            #expect(bytes == [166])
        }
        #expect(alive[166]())
        #expect(alive.dropFirst(167).allSatisfy { !$0() })
        queue.consume(1)
        #expect(alive.allSatisfy { !$0() })
    }

    /// Random appends, partial writes, tick ends, drops and growth against a plain model of the byte stream;
    /// every frame must be alive while the model still needs it and gone once nothing does.
    @Test func randomizedAgainstAModel() {
        var generator = SeededGenerator(seed: 42)
        var queue = OutboundQueue()
        var model: [UInt8] = []
        var tick: [SharedFrame] = []
        // Whether each frame is still alive, and where its last byte is in the stream.
        var watched: [(isAlive: () -> Bool, lastByteOffset: Int)] = []
        var streamOffset = 0  // bytes written so far
        var appendedTotal = 0
        for step in 0..<20_000 {
            switch Int.random(in: 0..<10, using: &generator) {
            case 0..<5:
                let length = Int.random(in: 1...40, using: &generator)
                let item = frame(UInt8(truncatingIfNeeded: step), length: length)
                tick.append(item)
                queue.append(held: item)
                model.append(contentsOf: [UInt8](repeating: UInt8(truncatingIfNeeded: step), count: length))
                appendedTotal += length
                watched.append(({ [weak item] in item != nil }, appendedTotal))
            case 5..<8:
                guard !model.isEmpty else { continue }
                let written = Int.random(in: 1...model.count, using: &generator)
                queue.consume(written)
                model.removeFirst(written)
                streamOffset += written
            case 8:
                // The end of a flush pass: the queue retains what is left, the loop lets go.
                queue.retainUnsent()
                tick.removeAll()
            default:
                queue.dropUnsent()
                // Only the frame already partly written stays.
                let kept = queue.queuedBytes
                model = Array(model.prefix(kept))
                appendedTotal = streamOffset + kept
                watched.removeAll { $0.lastByteOffset > appendedTotal }
            }
            let now = state(queue)
            #expect(now.queuedBytes == model.count)
            if step % 97 == 0 {
                #expect(now.pending == model)
                for entry in watched where entry.lastByteOffset > streamOffset {
                    #expect(entry.isAlive())
                }
            }
        }
        queue.retainUnsent()
        tick.removeAll()
        queue.removeAll()
        for entry in watched { #expect(!entry.isAlive()) }
    }
}
