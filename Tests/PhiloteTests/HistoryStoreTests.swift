import Glibc
import Synchronization
import Testing

@testable import Philote

// MARK: Helpers

private let issuer = "0f8fad5b-d9cb-469f-a165-70867728950e"

/// The frame a reader that asked for positions gets, made as the hub makes it: the message's JSON, positioned,
/// in a text frame.
private func positionedFrame(_ channel: [UInt8], _ data: [UInt8], at position: StreamPosition) -> SharedFrame {
    let json = channel.withUnsafeBytes { channel in
        data.withUnsafeBytes { data in ServerMessageEncoder.encode(issuer: issuer, channel: channel, data: data) }
    }
    return ServerMessageEncoder.positioned(json, at: position).withUnsafeBytes { FrameWriter.frame(.text, payload: $0) }
}

/// A frame of exactly `length` bytes, for byte arithmetic.
private func sized(_ length: Int) -> SharedFrame {
    SharedFrame.make(bytes: [UInt8](repeating: 0x61, count: length))
}

/// The epoch and offset written in a positioned frame (the tail of its JSON: `,"epoch":"E","offset":N}\n`).
private func writtenPosition(_ frame: SharedFrame) -> StreamPosition? {
    let header: Int =
        switch frame.buffer[1] & 0x7F {
        case 126: 4
        case 127: 10
        default: 2
        }
    var text = Array(frame.buffer[header...])
    guard text.suffix(2) == Array("}\n".utf8) else { return nil }
    text.removeLast(2)
    var digits: [UInt8] = []
    while let last = text.last, (0x30...0x39).contains(last) {
        digits.insert(last, at: 0)
        text.removeLast()
    }
    let offsetKey = Array(#"","offset":"#.utf8)
    guard !digits.isEmpty, text.suffix(offsetKey.count).elementsEqual(offsetKey) else { return nil }
    text.removeLast(offsetKey.count)
    guard let quote = text.lastIndex(of: 0x22), text[...quote].suffix(10).elementsEqual(#","epoch":""#.utf8) else {
        return nil
    }
    guard let offset = UInt64(String(decoding: digits, as: UTF8.self)) else { return nil }
    return StreamPosition(epoch: Epoch(String(decoding: text[(quote + 1)...], as: UTF8.self)), offset: offset)
}

private func isEpochText(_ text: String) -> Bool {
    text.utf8.count == 12 && text.utf8.allSatisfy { (0x30...0x39).contains($0) || (0x61...0x66).contains($0) }
}

/// A store's totals, comparable (HistoryStatistics is a plain struct).
private struct Figures: Equatable, CustomStringConvertible {
    var channels: Int
    var messages: Int
    var bytes: Int
    var description: String { "\(channels) channels, \(messages) messages, \(bytes) bytes" }
}

private func makeStore(size: Int = 10, ttl: UInt64 = 1000, maxMemory: Int = 1 << 20) -> HistoryStore {
    HistoryStore(settings: HistorySettings(size: size, ttl: ttl, maxMemory: maxMemory))
}

extension HistoryStore {
    fileprivate var figures: Figures {
        let statistics = self.statistics()
        return Figures(channels: statistics.channels, messages: statistics.messages, bytes: statistics.bytes)
    }

    /// One publish with an ordinary positioned frame; the frame comes back too.
    @discardableResult
    fileprivate func publish(
        _ channel: String, at now: UInt64, data: String = "hello", number: UInt64 = 0
    ) -> (position: StreamPosition, sequence: UInt64, frame: SharedFrame) {
        var made: SharedFrame?
        let (position, sequence) = append(
            to: Array(channel.utf8), now: now, numbered: { number },
            frame: { position in
                let frame = positionedFrame(Array(channel.utf8), Array(data.utf8), at: position)
                made = frame
                return frame
            })
        return (position, sequence, made!)
    }

    /// One publish of a frame of exactly `length` bytes.
    @discardableResult
    fileprivate func publish(_ channel: String, at now: UInt64, length: Int) -> StreamPosition {
        append(to: Array(channel.utf8), now: now, numbered: { 0 }, frame: { _ in sized(length) }).position
    }

    fileprivate func read(
        _ channel: String, after position: StreamPosition?, maxBytes: Int = .max, now: UInt64
    ) -> HistoryRead {
        read(Array(channel.utf8), after: position, maxBytes: maxBytes, now: now, sequence: { 0 })
    }

    fileprivate func page(_ channel: String, after offset: UInt64 = 0, limit: Int = .max, now: UInt64) -> HistoryPage {
        page(Array(channel.utf8), after: offset, limit: limit, now: now)
    }

    /// The offsets of what `channel` keeps, without expiring anything: at `now` 0 nothing has outlived the TTL
    /// (every test here publishes after time 0).
    fileprivate func keptOffsets(_ channel: String) -> [UInt64] {
        let page = page(channel, now: 0)
        return page.messages.indices.map { page.oldest + UInt64($0) }
    }
}

private func offsets(_ read: HistoryRead) -> [UInt64] { read.messages.map { writtenPosition($0)!.offset } }

/// Fixed costs (HistorySettings): a channel "a" costs 161 bytes; a message of a 52-byte frame costs 100.
private let channelA = 1 + HistorySettings.channelOverhead
private let message100 = 100 - HistorySettings.messageOverhead

// MARK: Unit tests

@Suite struct HistoryStoreTests {
    @Test func costsAreWhatTheseTestsAssume() {
        #expect(HistorySettings.channelOverhead == 160)
        #expect(HistorySettings.messageOverhead == 48)
    }

    /// Offsets count 1, 2, 3 within one epoch per channel; each channel has its own epoch; the frame closure is
    /// asked once, with the position that comes back.
    @Test func offsetsCountFromOneWithoutGapsPerChannel() {
        let store = makeStore()
        var epochs: Set<Epoch> = []
        for channel in ["a", "b", "room:1"] {
            var first: Epoch?
            for expected in UInt64(1)...5 {
                var asked: [StreamPosition] = []
                let (position, _) = store.append(
                    to: Array(channel.utf8), now: 1000 + expected, numbered: { 7 },
                    frame: { position in
                        asked.append(position)
                        return positionedFrame(Array(channel.utf8), Array("x".utf8), at: position)
                    })
                #expect(asked == [position])
                #expect(position.offset == expected)
                #expect(isEpochText(position.epoch.text), "epoch \(position.epoch.text)")
                if let first { #expect(position.epoch == first) } else { first = position.epoch }
            }
            epochs.insert(first!)
            #expect(store.keptOffsets(channel) == [1, 2, 3, 4, 5])
        }
        #expect(epochs.count == 3)
        let statistics = store.statistics()
        #expect(statistics.channels == 3 && statistics.messages == 15)
    }

    /// `sequence` is whatever the closure gave, asked exactly once, for append and read alike.
    @Test func sequenceIsTheClosuresValue() {
        let store = makeStore()
        var calls = 0
        let (_, sequence) = store.append(
            to: Array("a".utf8), now: 10,
            numbered: {
                calls += 1; return 41
            }, frame: { _ in sized(10) })
        #expect(sequence == 41 && calls == 1)
        calls = 0
        for position in [nil, StreamPosition(epoch: Epoch("nope"), offset: 3)] as [StreamPosition?] {
            for channel in ["a", "unknown"] {
                let read = store.read(
                    Array(channel.utf8), after: position, maxBytes: .max, now: 10,
                    sequence: {
                        calls += 1; return 1234
                    })
                #expect(read.sequence == 1234)
            }
        }
        #expect(calls == 4)
    }

    /// A channel that has no record: `.new` without a position, `.epochChanged` with one; no current position.
    @Test func readOfAChannelWithoutRecord() {
        let store = makeStore()
        let new = store.read("none", after: nil, now: 5)
        #expect(new.status == .new && new.current == nil && new.messages.isEmpty && new.caughtUp && new.through == 0)
        let forged = store.read("none", after: StreamPosition(epoch: Epoch("abc"), offset: 9), now: 5)
        #expect(forged.status == .epochChanged && forged.current == nil && forged.messages.isEmpty)
        #expect(forged.through == 9 && forged.caughtUp)
        let page = store.page("none", after: 3, limit: 10, now: 5)
        #expect(page.current == nil && page.oldest == 1 && page.messages.isEmpty)
    }

    @Test func readStatuses() {
        let store = makeStore(size: 3)
        var last: StreamPosition!
        var frames: [SharedFrame] = []
        for index in UInt64(1)...5 {
            let published = store.publish("a", at: 100 + index)
            last = published.position
            frames.append(published.frame)
        }
        let epoch = last.epoch
        let now: UInt64 = 200
        // No position: new, with the current position, no messages.
        let new = store.read("a", after: nil, now: now)
        #expect(new.status == .new && new.current == last && new.messages.isEmpty && new.caughtUp)
        // Another epoch (a forged one, or one the channel had before).
        let other = store.read("a", after: StreamPosition(epoch: Epoch("000000000000"), offset: 2), now: now)
        #expect(other.status == .epochChanged && other.current == last && other.messages.isEmpty && other.through == 2)
        // Ahead of the channel, however far.
        for offset in [6, 7, UInt64(Int64.max)] {
            let ahead = store.read("a", after: StreamPosition(epoch: epoch, offset: offset), now: now)
            #expect(
                ahead.status == .ahead && ahead.current == last && ahead.messages.isEmpty && ahead.through == offset)
        }
        // At the newest message: continues with nothing.
        let there = store.read("a", after: last, now: now)
        #expect(there.status == .continues && there.messages.isEmpty && there.caughtUp && there.through == 5)
        // Kept are 3, 4, 5: a reader at 2 continues with all three, one at 1 or 0 is too old.
        let continues = store.read("a", after: StreamPosition(epoch: epoch, offset: 2), now: now)
        #expect(continues.status == .continues && continues.caughtUp && continues.through == 5)
        #expect(continues.messages.count == 3)
        #expect(zip(continues.messages, frames[2...]).allSatisfy { $0 === $1 })
        #expect(offsets(continues) == [3, 4, 5])
        let four = store.read("a", after: StreamPosition(epoch: epoch, offset: 4), now: now)
        #expect(four.status == .continues && offsets(four) == [5] && four.caughtUp)
        for offset: UInt64 in [0, 1] {
            let old = store.read("a", after: StreamPosition(epoch: epoch, offset: offset), now: now)
            #expect(old.status == .tooOld && old.current == last && old.messages.isEmpty && old.through == offset)
        }
    }

    /// A reader at offset 0 of the channel's epoch gets everything while nothing has been dropped.
    @Test func offsetZeroReadsFromTheFirstMessage() {
        let store = makeStore()
        let first = store.publish("a", at: 10).position
        store.publish("a", at: 11)
        let read = store.read("a", after: StreamPosition(epoch: first.epoch, offset: 0), now: 12)
        #expect(read.status == .continues && offsets(read) == [1, 2] && read.caughtUp)
    }

    /// At most `maxBytes` of frames, but always at least one message; `through` and `caughtUp` follow.
    @Test func byteBudget() {
        let store = makeStore()
        var epoch: Epoch!
        for _ in 0..<5 { epoch = store.publish("a", at: 10, length: 100).epoch }
        let start = StreamPosition(epoch: epoch, offset: 0)
        struct Taken: Equatable {
            var count: Int
            var through: UInt64
            var caughtUp: Bool
        }
        func take(_ maxBytes: Int) -> Taken {
            let read = store.read("a", after: start, maxBytes: maxBytes, now: 11)
            #expect(read.status == .continues)
            return Taken(count: read.messages.count, through: read.through, caughtUp: read.caughtUp)
        }
        #expect(take(0) == Taken(count: 1, through: 1, caughtUp: false))
        #expect(take(99) == Taken(count: 1, through: 1, caughtUp: false))
        #expect(take(100) == Taken(count: 1, through: 1, caughtUp: false))
        #expect(take(250) == Taken(count: 2, through: 2, caughtUp: false))
        #expect(take(300) == Taken(count: 3, through: 3, caughtUp: false))
        #expect(take(499) == Taken(count: 4, through: 4, caughtUp: false))
        #expect(take(500) == Taken(count: 5, through: 5, caughtUp: true))
        #expect(take(.max) == Taken(count: 5, through: 5, caughtUp: true))
        // From the middle.
        let middle = store.read("a", after: StreamPosition(epoch: epoch, offset: 3), maxBytes: 100, now: 11)
        #expect(middle.messages.count == 1 && middle.through == 4 && !middle.caughtUp)
    }

    /// `HISTORY_SIZE`: the newest N are kept; the record keeps counting.
    @Test func keepsTheNewestSizeMessages() {
        let store = makeStore(size: 3)
        for index in UInt64(1)...7 { store.publish("a", at: index) }
        #expect(store.keptOffsets("a") == [5, 6, 7])
        let page = store.page("a", after: 0, limit: 10, now: 8)
        #expect(page.oldest == 5 && page.current?.offset == 7 && page.messages.count == 3)
        let statistics = store.statistics()
        #expect(statistics.channels == 1 && statistics.messages == 3)
    }

    /// Pages: after an offset, at most `limit`, oldest first; `oldest` is the first kept offset (`current + 1`
    /// when none is kept).
    @Test func pages() {
        let store = makeStore(size: 5)
        var frames: [SharedFrame] = []
        for index in UInt64(1)...8 { frames.append(store.publish("a", at: 100 + index).frame) }
        let all = store.page("a", after: 0, limit: 100, now: 110)
        #expect(all.oldest == 4 && all.current?.offset == 8)
        #expect(all.messages.count == 5 && zip(all.messages, frames[3...]).allSatisfy { $0 === $1 })
        let limited = store.page("a", after: 5, limit: 2, now: 110)
        #expect(limited.messages.map { writtenPosition($0)!.offset } == [6, 7])
        #expect(store.page("a", after: 8, limit: 100, now: 110).messages.isEmpty)
        #expect(store.page("a", after: 1000, limit: 100, now: 110).messages.isEmpty)
        #expect(store.page("a", after: UInt64(Int64.max), limit: 100, now: 110).messages.isEmpty)
        #expect(store.page("a", after: 0, limit: 0, now: 110).messages.isEmpty)
        // Everything outlived the TTL: nothing kept, oldest is one past the current offset.
        let expired = store.page("a", after: 0, limit: 100, now: 108 + 1000)
        #expect(expired.messages.isEmpty && expired.oldest == 9 && expired.current?.offset == 8)
    }

    // MARK: TTL

    /// A message is readable for less than the TTL after its publish, and gone once the TTL has passed.
    @Test func readsForgetMessagesOlderThanTheTTL() {
        let store = makeStore(ttl: 100)
        let first = store.publish("a", at: 1000).position
        store.publish("a", at: 1050)
        let start = StreamPosition(epoch: first.epoch, offset: 0)
        #expect(offsets(store.read("a", after: start, now: 1099)) == [1, 2])
        // 1000 is now a TTL old.
        #expect(store.read("a", after: start, now: 1100).status == .tooOld)
        let fromOne = store.read("a", after: first, now: 1100)
        #expect(fromOne.status == .continues && offsets(fromOne) == [2])
        #expect(store.statistics().messages == 1)
        // Both gone: the record stays, so the epoch and offset do.
        let gone = store.read("a", after: first, now: 1150)
        #expect(gone.status == .tooOld && gone.current == StreamPosition(epoch: first.epoch, offset: 2))
        #expect(store.read("a", after: StreamPosition(epoch: first.epoch, offset: 2), now: 1150).status == .continues)
        #expect(store.statistics().messages == 0 && store.statistics().channels == 1)
        #expect(store.publish("a", at: 1200).position == StreamPosition(epoch: first.epoch, offset: 3))
    }

    /// An append drops what has outlived the TTL on its own channel.
    @Test func appendDropsItsChannelsExpiredMessages() {
        let store = makeStore(ttl: 100)
        store.publish("a", at: 1000)
        store.publish("a", at: 1050)
        store.publish("b", at: 1000)
        store.publish("a", at: 1120)
        #expect(store.keptOffsets("a") == [2, 3])
        #expect(store.keptOffsets("b") == [1])
    }

    /// Monotonic time 0 is a valid publish time: a message published then lives for the TTL like any other.
    /// (`expiry(now)` is 0 for any `now` below the TTL, and messages published "at or before" 0 are dropped.)
    @Test func aMessagePublishedAtTimeZeroLivesForTheTTL() {
        let store = makeStore(ttl: 1000)
        let position = store.publish("a", at: 0).position
        let read = store.read("a", after: StreamPosition(epoch: position.epoch, offset: 0), now: 10)
        #expect(read.status == .continues)
        #expect(offsets(read) == [1])
    }

    /// The sweep drops the messages of channels whose newest message outlived the TTL, least recently published
    /// first, and stops at the first channel that still has a live one; records (epoch, offset) stay.
    @Test func sweepEmptiesExpiredChannelsOnly() {
        let store = makeStore(ttl: 100)
        let a = store.publish("a", at: 1000).position
        store.publish("b", at: 990)  // an older message on a more recently published channel
        store.publish("b", at: 1060)
        store.publish("c", at: 1200)
        store.sweep(now: 1100)
        #expect(store.keptOffsets("a").isEmpty)
        #expect(store.keptOffsets("b") == [1, 2])
        #expect(store.keptOffsets("c") == [1])
        store.sweep(now: 1160)
        #expect(store.keptOffsets("b").isEmpty && store.keptOffsets("c") == [1])
        #expect(store.figures.channels == 3 && store.figures.messages == 1)
        // The records and their epochs stay: the next publish continues.
        #expect(store.publish("a", at: 1300).position == StreamPosition(epoch: a.epoch, offset: 2))
        store.sweep(now: 1400)
        #expect(store.statistics().messages == 0)
    }

    // MARK: Memory

    /// The bytes counted are each channel's name and overhead and each kept frame and its overhead.
    @Test func bytesAreCounted() {
        let store = makeStore()
        store.publish("a", at: 1, length: message100)
        store.publish("room", at: 1, length: 10)
        store.publish("room", at: 2, length: 20)
        let expected = channelA + 100 + (4 + 160) + (10 + 48) + (20 + 48)
        #expect(store.figures == Figures(channels: 2, messages: 3, bytes: expected))
        store.sweep(now: 5000)
        #expect(store.figures == Figures(channels: 2, messages: 0, bytes: channelA + 4 + 160))
    }

    /// Over the cap with a single channel: its oldest messages go; the newest always stays, even alone over the cap.
    @Test func theChannelJustPublishedLosesItsOldestLast() {
        let store = makeStore(maxMemory: channelA + 3 * 100)
        var epoch: Epoch!
        for index in 1...3 { epoch = store.publish("a", at: UInt64(index), length: message100).epoch }
        #expect(store.statistics().bytes == channelA + 300)
        let fourth = store.publish("a", at: 4, length: message100)
        #expect(fourth == StreamPosition(epoch: epoch, offset: 4))
        #expect(store.keptOffsets("a") == [2, 3, 4])
        // One message bigger than the cap: kept alone, over the cap (the documented exception).
        let big = store.publish("a", at: 5, length: 5000)
        #expect(big == StreamPosition(epoch: epoch, offset: 5))
        #expect(store.keptOffsets("a") == [5])
        #expect(store.figures == Figures(channels: 1, messages: 1, bytes: channelA + 5000 + 48))
        let next = store.publish("a", at: 6, length: message100)
        #expect(next == StreamPosition(epoch: epoch, offset: 6))
        #expect(store.keptOffsets("a") == [6])
    }

    /// Records that keep no message go first (their channel then starts a new epoch), before any kept message.
    @Test func idleRecordsAreEvictedFirst() {
        let store = makeStore(ttl: 100, maxMemory: 2 * channelA + 2 * 100)
        let a = store.publish("a", at: 1000, length: message100)
        store.publish("b", at: 1050, length: message100)
        store.sweep(now: 1100)  // a is idle now
        #expect(store.figures == Figures(channels: 2, messages: 1, bytes: 2 * channelA + 100))
        let b2 = store.publish("b", at: 1101, length: message100)
        #expect(store.figures == Figures(channels: 2, messages: 2, bytes: 2 * channelA + 200))
        let b3 = store.publish("b", at: 1102, length: message100)
        // Over by 100: a's record (161) goes, b keeps all three.
        #expect(store.figures == Figures(channels: 1, messages: 3, bytes: channelA + 300))
        #expect(store.keptOffsets("b") == [1, 2, 3])
        #expect(b3 == StreamPosition(epoch: b2.epoch, offset: 3))
        // a's position is in an epoch that no longer exists.
        let read = store.read("a", after: a, now: 1103)
        #expect(read.status == .epochChanged && read.current == nil)
        let again = store.publish("a", at: 1104, length: 10)
        #expect(again.offset == 1 && again.epoch != a.epoch)
    }

    /// Then the history of the channel published least recently (not the one made first), before the oldest
    /// messages of the channel just published; the record stays while the memory allows, so its epoch does.
    @Test func leastRecentlyPublishedHistoryIsEvictedNext() {
        let store = makeStore(maxMemory: 3 * channelA + 3 * 100)
        let a1 = store.publish("a", at: 1, length: message100)
        let b1 = store.publish("b", at: 2, length: message100)
        store.publish("c", at: 3, length: message100)
        store.publish("a", at: 4, length: message100)  // order now b, c, a
        #expect(store.keptOffsets("a") == [1, 2])
        #expect(store.keptOffsets("b").isEmpty)
        #expect(store.keptOffsets("c") == [1])
        #expect(store.figures == Figures(channels: 3, messages: 3, bytes: 3 * channelA + 300))
        // b's record stays: its reader is told its offset is too old, not that the epoch changed.
        let read = store.read("b", after: StreamPosition(epoch: b1.epoch, offset: 0), now: 5)
        #expect(read.status == .tooOld && read.current == b1)
        #expect(store.publish("b", at: 6, length: 10) == StreamPosition(epoch: b1.epoch, offset: 2))
        // Over by 58: c is now the least recently published.
        #expect(store.keptOffsets("c").isEmpty && store.keptOffsets("a") == [1, 2] && store.keptOffsets("b") == [2])
        #expect(store.publish("a", at: 7, length: 10).epoch == a1.epoch)
    }

    /// A cascade: an active history dropped becomes an idle record, which goes before the next active history.
    @Test func evictionCascadesThroughIdleRecords() {
        let store = makeStore(maxMemory: 3 * channelA + 3 * 100)
        let a = store.publish("a", at: 1, length: message100)
        let b = store.publish("b", at: 2, length: message100)
        let c = store.publish("c", at: 3, length: message100)
        // c grows by 400 over the cap: a's history (100) and then its record (161) go, then b's history (100), and
        // then, 39 bytes still over, b's record, before any of c's own messages.
        let c2 = store.publish("c", at: 4, length: 400 - 48)
        #expect(c2 == StreamPosition(epoch: c.epoch, offset: 2))
        #expect(store.figures == Figures(channels: 1, messages: 2, bytes: channelA + 100 + 400))
        #expect(store.read("a", after: a, now: 5).status == .epochChanged)
        #expect(store.read("b", after: b, now: 5).status == .epochChanged)
        #expect(store.keptOffsets("c") == [1, 2])
    }
}

// MARK: Model

/// The reference: per channel its epoch, last offset and kept messages, in plain arrays; the lists of the store as
/// stamps (the order in which a channel was last published, or became a record without messages).
private final class ModelChannel {
    let name: [UInt8]
    let epoch: Epoch
    var lastOffset: UInt64 = 0
    var kept: [(offset: UInt64, time: UInt64, frame: SharedFrame)] = []
    var active = false
    var stamp = 0

    init(name: [UInt8], epoch: Epoch) {
        self.name = name
        self.epoch = epoch
    }

    var oldest: UInt64 { kept.first?.offset ?? lastOffset + 1 }
}

private struct HistoryModel {
    let settings: HistorySettings
    var channels: [[UInt8]: ModelChannel] = [:]
    var stamps = 0
    /// How often each eviction rule applied, so that a run can show it reached them all.
    var evicted = (records: 0, histories: 0, ownOldest: 0, overCap: 0)

    init(settings: HistorySettings) {
        self.settings = settings
    }

    var bytes: Int {
        channels.values.reduce(0) { total, channel in
            total + channel.name.count + HistorySettings.channelOverhead
                + channel.kept.reduce(0) { $0 + $1.frame.length + HistorySettings.messageOverhead }
        }
    }
    var messages: Int { channels.values.reduce(0) { $0 + $1.kept.count } }

    func deadline(_ now: UInt64) -> UInt64? { now >= settings.ttl ? now - settings.ttl : nil }

    mutating func stamp(_ channel: ModelChannel, active: Bool) {
        stamps += 1
        channel.stamp = stamps
        channel.active = active
    }

    func dropExpired(_ channel: ModelChannel, now: UInt64) {
        guard let deadline = deadline(now) else { return }
        channel.kept.removeAll { $0.time <= deadline }
    }

    mutating func expire(_ channel: ModelChannel, now: UInt64) {
        dropExpired(channel, now: now)
        if channel.kept.isEmpty && channel.active { stamp(channel, active: false) }
    }

    mutating func append(_ name: [UInt8], epoch: Epoch, now: UInt64, frame: SharedFrame) {
        let channel: ModelChannel
        if let existing = channels[name] {
            channel = existing
        } else {
            channel = ModelChannel(name: name, epoch: epoch)
            channels[name] = channel
        }
        dropExpired(channel, now: now)
        channel.lastOffset += 1
        channel.kept.append((channel.lastOffset, now, frame))
        if channel.kept.count > settings.size { channel.kept.removeFirst() }
        stamp(channel, active: true)
        while bytes > settings.maxMemory {
            if let idle = channels.values.filter({ !$0.active }).min(by: { $0.stamp < $1.stamp }) {
                channels[idle.name] = nil
                evicted.records += 1
            } else if let other = channels.values.filter({ $0.active && $0 !== channel }).min(by: {
                $0.stamp < $1.stamp
            }) {
                other.kept.removeAll()
                stamp(other, active: false)
                evicted.histories += 1
            } else if channel.kept.count > 1 {
                channel.kept.removeFirst()
                evicted.ownOldest += 1
            } else {
                evicted.overCap += 1
                break
            }
        }
    }

    mutating func read(_ name: [UInt8], after position: StreamPosition?, maxBytes: Int, now: UInt64) -> (
        status: HistoryRead.Status, current: StreamPosition?, messages: [SharedFrame], through: UInt64, caughtUp: Bool
    ) {
        guard let channel = channels[name] else {
            return (position == nil ? .new : .epochChanged, nil, [], position?.offset ?? 0, true)
        }
        expire(channel, now: now)
        let current = StreamPosition(epoch: channel.epoch, offset: channel.lastOffset)
        guard let position else { return (.new, current, [], 0, true) }
        let refused: HistoryRead.Status? =
            if position.epoch != channel.epoch {
                .epochChanged
            } else if position.offset > channel.lastOffset {
                .ahead
            } else if position.offset < channel.lastOffset && position.offset + 1 < channel.oldest {
                .tooOld
            } else {
                nil
            }
        if let refused { return (refused, current, [], position.offset, true) }
        var messages: [SharedFrame] = []
        var taken = 0
        for message in channel.kept where message.offset > position.offset {
            if !messages.isEmpty && taken + message.frame.length > maxBytes { break }
            messages.append(message.frame)
            taken += message.frame.length
        }
        let through = position.offset + UInt64(messages.count)
        return (.continues, current, messages, through, through == channel.lastOffset)
    }

    mutating func page(_ name: [UInt8], after offset: UInt64, limit: Int, now: UInt64) -> (
        current: StreamPosition?, oldest: UInt64, messages: [SharedFrame]
    ) {
        guard let channel = channels[name] else { return (nil, 1, []) }
        expire(channel, now: now)
        let messages = channel.kept.filter { $0.offset > offset }.prefix(limit).map(\.frame)
        return (StreamPosition(epoch: channel.epoch, offset: channel.lastOffset), channel.oldest, Array(messages))
    }

    mutating func sweep(now: UInt64) {
        guard let deadline = deadline(now) else { return }
        while let oldest = channels.values.filter(\.active).min(by: { $0.stamp < $1.stamp }),
            let newest = oldest.kept.last, newest.time <= deadline
        {
            oldest.kept.removeAll()
            stamp(oldest, active: false)
        }
    }
}

/// What went wrong in a run, with its step, so that one failing seed says where.
private struct Findings {
    var notes: [String] = []
    mutating func check(_ condition: Bool, _ note: @autoclosure () -> String) {
        if !condition && notes.count < 20 { notes.append(note()) }
    }
}

extension HistoryStoreTests {
    /// A seeded random run of appends, reads (positions real and forged), pages and sweeps, against the model after
    /// every step.
    @Test(arguments: UInt64(0)..<12)
    func agreesWithTheModel(seed: UInt64) {
        var random = SeededGenerator(seed: 0x4849_5354 &+ seed)
        let sizes = [1, 2, 3, 5, 8, 40, 70]
        let settings = HistorySettings(
            size: sizes[Int(seed) % sizes.count], ttl: [50, 200, 1000][Int(seed) % 3],
            maxMemory: [700, 2500, 6000, 20000][Int(seed / 3) % 4])
        let store = HistoryStore(settings: settings)
        var model = HistoryModel(settings: settings)
        let names: [[UInt8]] = ["a", "room-2", "c:3", "ddddddddddddd", "é"].map { Array($0.utf8) }
        var epochsOf: [[UInt8]: [Epoch]] = [:]
        var now: UInt64 = 1 + UInt64.random(in: 0...2000, using: &random)
        var numbers: UInt64 = 0
        var findings = Findings()
        var statuses: [HistoryRead.Status: Int] = [:]

        func position(for name: [UInt8]) -> StreamPosition? {
            let last = model.channels[name]?.lastOffset ?? 0
            let epoch = model.channels[name]?.epoch
            switch Int.random(in: 0..<10, using: &random) {
            case 0: return nil
            case 1:
                return StreamPosition(epoch: Epoch("forged"), offset: UInt64.random(in: 0...last + 2, using: &random))
            case 2: return epochsOf[name]?.first.map { StreamPosition(epoch: $0, offset: last) }
            case 3: return epoch.map { StreamPosition(epoch: $0, offset: UInt64(Int64.max)) }
            case 4, 5, 6:
                // Near the end, where a reader that stayed close would be.
                let back = UInt64.random(in: 0...UInt64(settings.size), using: &random)
                return epoch.map { StreamPosition(epoch: $0, offset: last - min(last, back)) }
            default:
                return epoch.map {
                    StreamPosition(epoch: $0, offset: UInt64.random(in: 0...last + 2, using: &random))
                }
            }
        }

        for step in 0..<500 {
            let name = names[Int.random(in: 0..<names.count, using: &random)]
            let label = "seed \(seed) step \(step) \(String(decoding: name, as: UTF8.self))"
            switch Int.random(in: 0..<100, using: &random) {
            case 0..<45:
                now +=
                    Int.random(in: 0..<10, using: &random) == 0
                    ? settings.ttl * 2 : UInt64.random(in: 0...settings.ttl / 4, using: &random)
                let length =
                    Int.random(in: 0..<20, using: &random) == 0 ? 2000 : Int.random(in: 0...300, using: &random)
                let data = [UInt8](repeating: UInt8(ascii: "d"), count: length)
                var asked: [StreamPosition] = []
                var made: SharedFrame?
                var numbered = 0
                let (position, sequence) = store.append(
                    to: name, now: now,
                    numbered: {
                        numbered += 1
                        numbers += 1
                        return numbers
                    },
                    frame: { position in
                        asked.append(position)
                        made = positionedFrame(name, data, at: position)
                        return made!
                    })
                findings.check(asked == [position], "\(label): frame closure asked \(asked) for \(position)")
                findings.check(
                    numbered == 1 && sequence == numbers, "\(label): sequence \(sequence), numbered \(numbered)")
                if let channel = model.channels[name] {
                    findings.check(
                        position == StreamPosition(epoch: channel.epoch, offset: channel.lastOffset + 1),
                        "\(label): appended at \(position), model expects \(channel.epoch) \(channel.lastOffset + 1)")
                } else {
                    findings.check(position.offset == 1, "\(label): a new record's first offset is \(position.offset)")
                    findings.check(isEpochText(position.epoch.text), "\(label): epoch \(position.epoch.text)")
                    findings.check(
                        !(epochsOf[name] ?? []).contains(position.epoch), "\(label): a new record reused an epoch")
                    epochsOf[name, default: []].append(position.epoch)
                }
                model.append(name, epoch: position.epoch, now: now, frame: made!)
                let figures = store.figures
                findings.check(
                    figures.bytes <= settings.maxMemory || (figures.channels == 1 && figures.messages == 1),
                    "\(label): over the cap \(settings.maxMemory) with \(figures)")
                findings.check(
                    model.channels[name]?.kept.last?.frame === made, "\(label): the message just published is not kept")
            case 45..<70:
                if Bool.random(using: &random) { now += UInt64.random(in: 0...settings.ttl / 2, using: &random) }
                let from = position(for: name)
                var maxBytes = [0, 50, 200, 1000, Int.max][Int.random(in: 0..<5, using: &random)]
                if let from, let channel = model.channels[name], Bool.random(using: &random) {
                    // Exactly the first k frames' bytes, or one byte short of them: the budget's edges.
                    let next = channel.kept.filter { $0.offset > from.offset }.map(\.frame.length)
                    let k = Int.random(in: 1...3, using: &random)
                    maxBytes = next.prefix(k).reduce(0, +) - Int.random(in: 0...1, using: &random)
                }
                let number = UInt64.random(in: 0...1000, using: &random)
                let read = store.read(name, after: from, maxBytes: maxBytes, now: now, sequence: { number })
                let expected = model.read(name, after: from, maxBytes: maxBytes, now: now)
                let context = "\(label): read after \(String(describing: from)) max \(maxBytes) at \(now)"
                statuses[read.status, default: 0] += 1
                findings.check(read.sequence == number, "\(context): sequence \(read.sequence)")
                findings.check(read.status == expected.status, "\(context): \(read.status), model \(expected.status)")
                findings.check(
                    read.current == expected.current, "\(context): current \(String(describing: read.current))")
                findings.check(
                    read.messages.count == expected.messages.count
                        && zip(read.messages, expected.messages).allSatisfy { $0 === $1 },
                    "\(context): \(read.messages.count) messages, model \(expected.messages.count)")
                findings.check(read.through == expected.through, "\(context): through \(read.through)")
                findings.check(read.caughtUp == expected.caughtUp, "\(context): caughtUp \(read.caughtUp)")
                // The same properties, stated without the model.
                if from == nil { findings.check(read.status == .new, "\(context): no position but \(read.status)") }
                findings.check(
                    read.status == .continues || read.messages.isEmpty, "\(context): messages with \(read.status)")
                if read.status == .continues, let from, let current = read.current {
                    let written = read.messages.map { writtenPosition($0) }
                    findings.check(
                        written
                            == read.messages.indices.map {
                                StreamPosition(epoch: current.epoch, offset: from.offset + 1 + UInt64($0))
                            }, "\(context): not contiguous from the reader's position: \(written)")
                    findings.check(read.through == from.offset + UInt64(read.messages.count), "\(context): through")
                    findings.check(read.through <= current.offset, "\(context): through beyond current")
                    findings.check(read.caughtUp == (read.through == current.offset), "\(context): caughtUp")
                    let taken = read.messages.reduce(0) { $0 + $1.length }
                    findings.check(
                        read.messages.count <= 1 || taken <= maxBytes, "\(context): \(taken) bytes over budget")
                    findings.check(
                        read.caughtUp || !read.messages.isEmpty, "\(context): continues, not caught up, and nothing")
                }
            case 70..<85:
                if Bool.random(using: &random) { now += UInt64.random(in: 0...settings.ttl / 2, using: &random) }
                let last = model.channels[name]?.lastOffset ?? 0
                let after =
                    Int.random(in: 0..<8, using: &random) == 0
                    ? UInt64(Int64.max) : UInt64.random(in: 0...last + 2, using: &random)
                let limit = [0, 1, 3, 100, Int.max][Int.random(in: 0..<5, using: &random)]
                let page = store.page(name, after: after, limit: limit, now: now)
                let expected = model.page(name, after: after, limit: limit, now: now)
                let context = "\(label): page after \(after) limit \(limit) at \(now)"
                findings.check(
                    page.current == expected.current, "\(context): current \(String(describing: page.current))")
                findings.check(
                    page.oldest == expected.oldest, "\(context): oldest \(page.oldest), model \(expected.oldest)")
                findings.check(
                    page.messages.count == expected.messages.count
                        && zip(page.messages, expected.messages).allSatisfy { $0 === $1 },
                    "\(context): \(page.messages.count) messages, model \(expected.messages.count)")
            case 85..<95:
                now += UInt64.random(in: 0...settings.ttl, using: &random)
                store.sweep(now: now)
                model.sweep(now: now)
            default:
                now += UInt64.random(in: 0...settings.ttl * 2, using: &random)
            }

            // After every step: the totals, and every channel's record and kept messages (read at time 0, which
            // expires nothing, so that looking changes nothing).
            let figures = store.figures
            let modelled = Figures(channels: model.channels.count, messages: model.messages, bytes: model.bytes)
            findings.check(figures == modelled, "\(label): \(figures), model \(modelled)")
            for name in names {
                let page = store.page(name, after: 0, limit: .max, now: 0)
                let channel = model.channels[name]
                findings.check(
                    page.current == channel.map { StreamPosition(epoch: $0.epoch, offset: $0.lastOffset) },
                    "\(label): \(String(decoding: name, as: UTF8.self)) at \(String(describing: page.current))")
                findings.check(page.messages.count <= settings.size, "\(label): more than HISTORY_SIZE kept")
                findings.check(
                    page.oldest == (channel?.oldest ?? 1)
                        && page.messages.count == (channel?.kept.count ?? 0)
                        && zip(page.messages, channel?.kept ?? []).allSatisfy { $0 === $1.frame },
                    "\(label): \(String(decoding: name, as: UTF8.self)) keeps from \(page.oldest) \(page.messages.count)"
                )
            }
            if findings.notes.count >= 20 { break }
        }
        #expect(findings.notes.isEmpty, "\(findings.notes.joined(separator: "\n"))")
        // The run reached what it is for: every status, and under the small caps every eviction rule (the last
        // one, a lone message over the cap, needs a cap below the 2,000-byte payloads).
        #expect(statuses.count == 5, "statuses seen: \(statuses)")
        if settings.maxMemory <= 2500 {
            #expect(model.evicted.records > 0 && model.evicted.histories > 0, "evictions: \(model.evicted)")
            if settings.size > 1 { #expect(model.evicted.ownOldest > 0, "evictions: \(model.evicted)") }
            if settings.maxMemory < 2000 { #expect(model.evicted.overCap > 0, "evictions: \(model.evicted)") }
        }
    }
}

// MARK: Concurrency

private final class ThreadBody {
    let run: () -> Void
    init(_ run: @escaping () -> Void) { self.run = run }
}

/// Runs each body on a thread of its own and waits for all.
private func runThreads(_ bodies: [@Sendable () -> Void]) {
    var threads: [pthread_t] = []
    for body in bodies {
        var thread = pthread_t()
        let context = Unmanaged.passRetained(ThreadBody(body)).toOpaque()
        let result = pthread_create(
            &thread, nil,
            { context in
                Unmanaged<ThreadBody>.fromOpaque(context!).takeRetainedValue().run()
                return nil
            }, context)
        precondition(result == 0, "pthread_create failed: \(result)")
        threads.append(thread)
    }
    for thread in threads { pthread_join(thread, nil) }
}

/// What the owner's closures record, and the readers' closures look at: touched only under the store's lock (the
/// closures run inside it).
private final class UnderTheLock: @unchecked Sendable {
    var number: UInt64 = 0
    var pending: StreamPosition?
    var latest: [[UInt8]: StreamPosition] = [:]
}

/// What the threads share outside the store.
private final class Shared: Sendable {
    let clock = Atomic<UInt64>(1)
    let done = Atomic<Bool>(false)
    let reads = Atomic<Int>(0)
    let failures = Mutex<[String]>([])
}

extension HistoryStoreTests {
    /// One owner appends (and sweeps) while readers read and page: every answer is consistent in itself and with
    /// the publish number read with it.
    @Test func readersWhileTheOwnerAppends() {
        let settings = HistorySettings(size: 20, ttl: 60, maxMemory: 6000)
        let store = HistoryStore(settings: settings)
        let names: [[UInt8]] = ["a", "b", "c", "d"].map { Array($0.utf8) }
        let shared = UnderTheLock()
        let threads = Shared()
        let appends = 3000

        let owner: @Sendable () -> Void = {
            var random = SeededGenerator(seed: 99)
            for index in 0..<appends {
                let now = threads.clock.add(1, ordering: .relaxed).newValue
                let name = names[Int.random(in: 0..<names.count, using: &random)]
                let data = [UInt8](repeating: 0x78, count: Int.random(in: 0...200, using: &random))
                _ = store.append(
                    to: name, now: now,
                    numbered: {
                        shared.number += 1
                        shared.latest[name] = shared.pending
                        return shared.number
                    },
                    frame: { position in
                        shared.pending = position
                        return positionedFrame(name, data, at: position)
                    })
                if index % 97 == 0 { store.sweep(now: now) }
            }
            threads.done.store(true, ordering: .releasing)
        }

        func reader(_ seed: UInt64) -> @Sendable () -> Void {
            {
                var random = SeededGenerator(seed: seed)
                var positions: [[UInt8]: StreamPosition] = [:]
                var notes: [String] = []
                var count = 0
                func note(_ text: String) { if notes.count < 10 { notes.append(text) } }
                while count < 10_000 && !(threads.done.load(ordering: .acquiring) && count > 200) {
                    count += 1
                    let name = names[Int.random(in: 0..<names.count, using: &random)]
                    let now = threads.clock.load(ordering: .relaxed)
                    if Int.random(in: 0..<3, using: &random) == 0 {
                        let after = positions[name]?.offset ?? UInt64.random(in: 0...50, using: &random)
                        let limit = Int.random(in: 0...30, using: &random)
                        let page = store.page(name, after: after, limit: limit, now: now)
                        guard let current = page.current else {
                            if page.oldest != 1 || !page.messages.isEmpty {
                                note("page without record: \(page.oldest)")
                            }
                            continue
                        }
                        let written = page.messages.map { writtenPosition($0) }
                        let first = max(after + 1, page.oldest)
                        let expected = page.messages.indices.map {
                            StreamPosition(epoch: current.epoch, offset: first + UInt64($0))
                        }
                        if written != expected { note("page after \(after) not contiguous: \(written) in \(current)") }
                        if page.messages.count > limit { note("page over its limit") }
                        if page.oldest > current.offset + 1 { note("page oldest \(page.oldest) past \(current)") }
                        continue
                    }
                    let from = Int.random(in: 0..<10, using: &random) == 0 ? nil : positions[name]
                    var expectedCurrent: StreamPosition?
                    var number: UInt64 = 0
                    let maxBytes = [0, 300, 2000, Int.max][Int.random(in: 0..<4, using: &random)]
                    let read = store.read(
                        name, after: from, maxBytes: maxBytes, now: now,
                        sequence: {
                            expectedCurrent = shared.latest[name]
                            number = shared.number
                            return number
                        })
                    if read.sequence != number { note("sequence \(read.sequence), closure gave \(number)") }
                    // The record is the one the latest numbered append made, or gone (evicted since).
                    if let current = read.current, current != expectedCurrent {
                        note(
                            "current \(current) but the latest append numbered \(number) was \(String(describing: expectedCurrent))"
                        )
                    }
                    if expectedCurrent == nil && read.current != nil { note("a record before any append") }
                    switch read.status {
                    case .continues:
                        guard let from, let current = read.current else {
                            note("continues without a position or a record")
                            continue
                        }
                        let written = read.messages.map { writtenPosition($0) }
                        let expected = read.messages.indices.map {
                            StreamPosition(epoch: current.epoch, offset: from.offset + 1 + UInt64($0))
                        }
                        if written != expected { note("read after \(from) not contiguous: \(written)") }
                        if read.through != from.offset + UInt64(read.messages.count) || read.through > current.offset {
                            note("through \(read.through) after \(from), current \(current)")
                        }
                        if read.caughtUp != (read.through == current.offset) { note("caughtUp \(read.caughtUp)") }
                        let taken = read.messages.reduce(0) { $0 + $1.length }
                        if read.messages.count > 1 && taken > maxBytes { note("\(taken) bytes over \(maxBytes)") }
                        positions[name] = StreamPosition(epoch: current.epoch, offset: read.through)
                    case .ahead:
                        // Positions here come from the store itself: within one epoch offsets only grow.
                        note("ahead: \(String(describing: from)) beyond \(String(describing: read.current))")
                    case .new, .epochChanged, .tooOld:
                        if !read.messages.isEmpty { note("messages with \(read.status)") }
                        if from == nil && read.status != .new { note("\(read.status) without a position") }
                        positions[name] = read.current
                    }
                }
                threads.reads.add(count, ordering: .relaxed)
                if !notes.isEmpty { threads.failures.withLock { $0 += notes } }
            }
        }

        runThreads([owner, reader(1), reader(2)])
        let failures = threads.failures.withLock { $0 }
        #expect(failures.isEmpty, "\(failures.joined(separator: "\n"))")
        #expect(threads.reads.load(ordering: .relaxed) > 400)
        let figures = store.figures
        #expect(figures.bytes <= settings.maxMemory || (figures.channels == 1 && figures.messages == 1))
    }
}
