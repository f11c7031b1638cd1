import Testing

@testable import Philote

/// The store as a copy of Redis's history (`record`, `merge`, `forget`): what a server heard of a channel's live
/// stream, joined with what a fetch read, must answer readers exactly as the single server's own history does.
@Suite struct HistoryCopyTests {
    private let epoch = Epoch("0123456789ab")
    private let channel = Array("room".utf8)

    private func store(size: Int = 100) -> HistoryStore {
        HistoryStore(settings: HistorySettings(size: size, ttl: 60_000, maxMemory: 1 << 20))
    }

    private func frame(_ offset: UInt64) -> SharedFrame {
        SharedFrame.make(bytes: Array("message \(offset)".utf8))
    }

    private func heard(_ store: HistoryStore, _ offset: UInt64, epoch: Epoch? = nil, now: UInt64 = 1000) {
        _ = store.record(
            frame(offset), to: channel, at: StreamPosition(epoch: epoch ?? self.epoch, offset: offset), now: now,
            numbered: { offset })
    }

    private func fetched(_ offsets: [UInt64], last: UInt64, epoch: Epoch? = nil) -> RemoteHistory.Found {
        RemoteHistory.Found(
            epoch: epoch ?? self.epoch, last: last, now: 5000,
            messages: offsets.map { ($0, 5000, Array("fetched \($0)".utf8)) })
    }

    private func merge(_ store: HistoryStore, _ found: RemoteHistory.Found, now: UInt64 = 1000) {
        store.merge(found, into: channel, now: now) { bytes, _ in SharedFrame.make(bytes: bytes) }
    }

    /// The texts a reader at `offset` is replayed, and whether it caught up.
    private func replay(_ store: HistoryStore, after offset: UInt64, now: UInt64 = 1000) -> (HistoryRead, [String]) {
        let read = store.read(
            channel, after: StreamPosition(epoch: epoch, offset: offset), maxBytes: .max, now: now, sequence: { 7 })
        return (read, read.messages.map { String(decoding: $0.buffer, as: UTF8.self) })
    }

    @Test func aCopyStartsAtTheFirstMessageHeard() {
        let store = store()
        heard(store, 41)
        heard(store, 42)
        let (read, texts) = replay(store, after: 40)
        #expect(read.status == .continues && read.caughtUp && texts == ["message 41", "message 42"])
        #expect(replay(store, after: 39).0.status == .tooOld)
        #expect(replay(store, after: 43).0.status == .ahead)
    }

    @Test func aGapOrAnotherEpochStartsTheCopyAgain() {
        let store = store()
        heard(store, 1)
        heard(store, 2)
        heard(store, 5)
        #expect(replay(store, after: 2).0.status == .tooOld)
        #expect(replay(store, after: 4).1 == ["message 5"])
        let other = Epoch("ba9876543210")
        heard(store, 1, epoch: other)
        #expect(replay(store, after: 4).0.status == .epochChanged)
        #expect(replay(store, after: 4).0.current == StreamPosition(epoch: other, offset: 1))
    }

    @Test func aRepeatIsKeptOnce() {
        let store = store()
        heard(store, 1)
        heard(store, 2)
        heard(store, 2)
        #expect(replay(store, after: 0).1 == ["message 1", "message 2"])
    }

    @Test func aFetchGoesBeforeWhatWasHeard() {
        let store = store()
        heard(store, 10)
        heard(store, 11)
        merge(store, fetched(Array(3...10), last: 10))
        let (read, texts) = replay(store, after: 2)
        #expect(read.status == .continues && read.caughtUp)
        #expect(texts == (3...9).map { "fetched \($0)" } + ["message 10", "message 11"])
    }

    @Test func aFetchWithNothingHeardIsTheWholeCopy() {
        let store = store()
        merge(store, fetched(Array(5...8), last: 8))
        #expect(replay(store, after: 4).1 == (5...8).map { "fetched \($0)" })
        heard(store, 9)
        #expect(replay(store, after: 8).1 == ["message 9"])
        // The position alone (a fetch of no messages) makes a record that continues.
        let other = self.store()
        merge(other, fetched([], last: 30))
        #expect(other.read(channel, after: nil, maxBytes: 1, now: 1000, sequence: { 0 }).current?.offset == 30)
    }

    @Test func aFetchThatCannotJoinIsDropped() {
        let store = store()
        heard(store, 20)
        // Ends before the copy's first offset minus one: a hole would remain.
        merge(store, fetched(Array(3...10), last: 10))
        #expect(replay(store, after: 19).1 == ["message 20"])
        #expect(replay(store, after: 10).0.status == .tooOld)
        // Another epoch than the copy's: the live stream has moved on.
        merge(store, fetched(Array(3...19), last: 19, epoch: Epoch("ffffffffffff")))
        #expect(replay(store, after: 10).0.status == .tooOld)
    }

    @Test func fetchedMessagesOlderThanTheTTLAreNotJoined() {
        let store = HistoryStore(settings: HistorySettings(size: 100, ttl: 1000, maxMemory: 1 << 20))
        let found = RemoteHistory.Found(
            epoch: epoch, last: 4, now: 10_000,
            messages: [(1, 8_000, Array("a".utf8)), (2, 9_500, Array("b".utf8)), (3, 9_600, Array("c".utf8)),
                (4, 9_700, Array("d".utf8))])
        store.merge(found, into: channel, now: 50_000) { bytes, _ in SharedFrame.make(bytes: bytes) }
        let read = store.read(
            channel, after: StreamPosition(epoch: epoch, offset: 1), maxBytes: .max, now: 50_000, sequence: { 0 })
        #expect(read.messages.map { String(decoding: $0.buffer, as: UTF8.self) } == ["b", "c", "d"])
        #expect(
            store.read(channel, after: StreamPosition(epoch: epoch, offset: 0), maxBytes: .max, now: 50_000,
                sequence: { 0 }).status == .tooOld)
    }

    @Test func forgetting() {
        let store = store()
        heard(store, 1)
        store.forget(channel)
        #expect(store.read(channel, after: nil, maxBytes: 1, now: 1000, sequence: { 0 }).current == nil)
        #expect(store.statistics().bytes == 0)
        heard(store, 3)
        store.forget { $0 == Array("other".utf8) }
        #expect(store.statistics().channels == 1)
        store.forget { _ in true }
        #expect(store.statistics() == HistoryStatistics())
    }
}
