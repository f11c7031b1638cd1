/// Every channel's history: its epoch, last offset and newest messages, within `HISTORY_SIZE` per channel,
/// `HISTORY_TTL` and `HISTORY_MAX_MEMORY`.
///
/// Only one loop appends (the hub's sequencer), so offsets are given in one order; readers on any loop recover
/// from it. Both take the lock, which also covers the hub's publish number given with each append: a reader that reads
/// the history and the number together knows that exactly the publishes numbered after it are missing from what
/// it read (see `Hub`), which is what lets recovery hand over to live delivery with no gap and no duplicate.
final class HistoryStore: @unchecked Sendable {
    private let settings: HistorySettings
    /// A pthread mutex rather than Swift's `Mutex`, whose contended wait ThreadSanitizer cannot see (see
    /// `PThreadLock`).
    private let lock = PThreadLock()
    private var channels: [[UInt8]: ChannelHistory] = [:]
    private var active = ChannelList(.active)
    private var idle = ChannelList(.idle)
    private var bytes = 0
    /// Messages kept, all channels.
    private var kept = 0

    init(settings: HistorySettings) {
        self.settings = settings
    }

    /// Appends one message to `channel` (made first when it has no record), published at `now` (monotonic
    /// milliseconds). `frame` makes the stored frame for the position the message gets; `numbered` gives the
    /// hub's publish number, under the same lock. The appending loop only.
    func append(
        to channel: [UInt8], now: UInt64, numbered: () -> UInt64, frame: (StreamPosition) -> SharedFrame
    ) -> (position: StreamPosition, sequence: UInt64) {
        lock.withLock {
            let record = channels[channel] ?? makeRecord(channel)
            let position = StreamPosition(epoch: record.epoch, offset: record.nextOffset)
            change(record) {
                if let deadline = expiry(now) { record.dropPublished(atOrBefore: deadline) }
                record.append(frame(position), time: now)
                if record.count > settings.size { record.dropOldest() }
            }
            move(record, to: .active)
            let sequence = numbered()
            evict(sparing: record)
            return (position, sequence)
        }
    }

    // MARK: A copy of a shared store (Redis)

    /// Keeps a message that arrived from the shared store with its position, as this server's copy of the
    /// channel's live stream: appended when it continues the copy, or starting a new copy when it does not (the
    /// epoch changed, or messages went by while this server was not listening: the copy forgets the older ones).
    /// `numbered` gives the hub's publish number under the lock, as for `append`. The receiving loop only.
    func record(
        _ frame: SharedFrame, to channel: [UInt8], at position: StreamPosition, now: UInt64, numbered: () -> UInt64
    ) -> UInt64 {
        lock.withLock {
            var record = channels[channel]
            if let existing = record, existing.epoch != position.epoch || position.offset != existing.nextOffset {
                // A repeat of what the copy has would be a duplicate in Redis's stream: kept once.
                if existing.epoch == position.epoch && position.offset < existing.nextOffset { return numbered() }
                drop(existing)
                record = nil
            }
            let target = record ?? makeRecord(channel, epoch: position.epoch, after: position.offset - 1)
            change(target) {
                if let deadline = expiry(now) { target.dropPublished(atOrBefore: deadline) }
                target.append(frame, time: now)
                if target.count > settings.size { target.dropOldest() }
            }
            move(target, to: .active)
            let sequence = numbered()
            evict(sparing: target)
            return sequence
        }
    }

    /// Joins what a fetch read from the shared store to this server's copy of `channel`. Called at or after the
    /// point of the copy's live stream where the fetch read (its marker), so the copy continues the fetched
    /// messages exactly: they go before what the copy has, and after it up to the fetch's last offset. When the copy
    /// is in another epoch, the live stream has moved on since the read: the fetched messages are dropped.
    /// `now` is this server's clock; `makeFrame` makes the stored (positioned) frame of a fetched one.
    func merge(
        _ fetched: RemoteHistory.Found, into channel: [UInt8], now: UInt64,
        makeFrame: (_ frame: [UInt8], _ position: StreamPosition) -> SharedFrame?
    ) {
        lock.withLock {
            let record: ChannelHistory
            if let existing = channels[channel] {
                guard existing.epoch == fetched.epoch, existing.firstOffset <= fetched.last + 1 else { return }
                // Nothing older than the copy (several recoveries sharing one fetch merge it once each).
                guard let oldest = fetched.messages.first, oldest.offset < existing.firstOffset else { return }
                record = existing
            } else {
                record = makeRecord(channel, epoch: fetched.epoch, after: fetched.last)
            }
            // Publish times on the shared store's clock, made local: as old here as they are there.
            let deadline = expiry(now)
            func message(_ entry: (offset: UInt64, time: UInt64, frame: [UInt8])) -> ChannelHistory.Message? {
                let age = fetched.now >= entry.time ? fetched.now - entry.time : 0
                let time = now >= age ? now - age : 0
                if let deadline, time <= deadline { return nil }
                let position = StreamPosition(epoch: fetched.epoch, offset: entry.offset)
                return makeFrame(entry.frame, position).map { ChannelHistory.Message(frame: $0, time: time) }
            }
            change(record) {
                // Older than the copy: only a run that ends right before its first offset (expired ones break it).
                var older: [ChannelHistory.Message] = []
                var expected = record.firstOffset
                for entry in fetched.messages.reversed() where entry.offset < record.firstOffset {
                    guard entry.offset + 1 == expected, let made = message(entry) else { break }
                    older.append(made)
                    expected = entry.offset
                }
                record.prepend(older.reversed())
                while record.count > settings.size { record.dropOldest() }
            }
            if !record.isEmpty && record.list == .idle { move(record, to: .active) }
            evict(sparing: record)
        }
    }

    /// Forgets this server's copy of `channel` (it stopped listening to it: later messages would not reach it).
    func forget(_ channel: [UInt8]) {
        lock.withLock {
            if let record = channels[channel] { drop(record) }
        }
    }

    /// Forgets the copies of every channel `matching` says (a connection to the shared store was lost).
    func forget(where matching: ([UInt8]) -> Bool) {
        lock.withLock {
            for (name, record) in channels where matching(name) { drop(record) }
        }
    }

    /// What a reader at `position` (nil: a reader with no position) is missing from `channel`: the kept messages
    /// after it, at most `maxBytes` of frames (but at least one), with the channel's current position and the
    /// hub's publish number (`sequence`, read under the lock). Any loop.
    func read(
        _ channel: [UInt8], after position: StreamPosition?, maxBytes: Int, now: UInt64, sequence: () -> UInt64
    ) -> HistoryRead {
        lock.withLock {
            let number = sequence()
            func answer(_ status: HistoryRead.Status, _ current: StreamPosition?) -> HistoryRead {
                HistoryRead(
                    status: status, current: current, messages: [], through: position?.offset ?? 0, caughtUp: true,
                    sequence: number)
            }
            guard let record = channels[channel] else { return answer(position == nil ? .new : .epochChanged, nil) }
            expire(record, now: now)
            let current = StreamPosition(epoch: record.epoch, offset: record.lastOffset)
            guard let position else { return answer(.new, current) }
            guard position.epoch == record.epoch else { return answer(.epochChanged, current) }
            guard position.offset <= record.lastOffset else { return answer(.ahead, current) }
            guard position.offset < record.lastOffset else { return answer(.continues, current) }
            guard position.offset + 1 >= record.firstOffset else { return answer(.tooOld, current) }
            var messages: [SharedFrame] = []
            var taken = 0
            var offset = position.offset
            while offset < record.lastOffset {
                let frame = record.message(at: offset + 1).frame
                if !messages.isEmpty && taken + frame.length > maxBytes { break }
                messages.append(frame)
                taken += frame.length
                offset += 1
            }
            return HistoryRead(
                status: .continues, current: current, messages: messages, through: offset,
                caughtUp: offset == record.lastOffset, sequence: number)
        }
    }

    /// Up to `limit` kept messages of `channel` after `offset`, oldest first, with the channel's position and its
    /// oldest kept offset (for `GET /api/history`). Any loop.
    func page(_ channel: [UInt8], after offset: UInt64, limit: Int, now: UInt64) -> HistoryPage {
        lock.withLock {
            guard let record = channels[channel] else { return HistoryPage(current: nil, oldest: 1, messages: []) }
            expire(record, now: now)
            var messages: [SharedFrame] = []
            var next = max(offset == .max ? offset : offset + 1, record.firstOffset)
            while next <= record.lastOffset && messages.count < limit {
                messages.append(record.message(at: next).frame)
                next += 1
            }
            return HistoryPage(
                current: StreamPosition(epoch: record.epoch, offset: record.lastOffset), oldest: record.firstOffset,
                messages: messages)
        }
    }

    /// Drops the messages of channels whose newest message has outlived the TTL, least recently published
    /// first; stops at the first channel with a live message, so it costs what it drops. The appending loop, on a
    /// timer.
    func sweep(now: UInt64) {
        lock.withLock {
            guard let deadline = expiry(now) else { return }
            while let oldest = active.oldest, let newest = oldest.newestTime, newest <= deadline {
                change(oldest) { oldest.dropAll() }
                move(oldest, to: .idle)
            }
        }
    }

    /// Channels with a record, messages kept, and the bytes they cost (for `/metrics`).
    func statistics() -> HistoryStatistics {
        lock.withLock { HistoryStatistics(channels: channels.count, messages: kept, bytes: bytes) }
    }

    // MARK: Under the lock

    /// Messages published at or before this have expired; nil while none can have.
    private func expiry(_ now: UInt64) -> UInt64? {
        now >= settings.ttl ? now - settings.ttl : nil
    }

    /// Runs `body` on `record` and keeps the store's totals in step with what it changed.
    private func change(_ record: ChannelHistory, _ body: () -> Void) {
        let (count, size) = (record.count, record.bytes)
        body()
        kept += record.count - count
        bytes += record.bytes - size
    }

    private func expire(_ record: ChannelHistory, now: UInt64) {
        guard let deadline = expiry(now) else { return }
        change(record) { record.dropPublished(atOrBefore: deadline) }
        if record.isEmpty && record.list == .active { move(record, to: .idle) }
    }

    private func makeRecord(_ channel: [UInt8], epoch: Epoch = .random(), after: UInt64 = 0) -> ChannelHistory {
        let record = ChannelHistory(name: channel, epoch: epoch, after: after)
        channels[channel] = record
        idle.append(record)
        bytes += channel.count + HistorySettings.channelOverhead
        return record
    }

    /// Removes `record` and everything it keeps.
    private func drop(_ record: ChannelHistory) {
        change(record) { record.dropAll() }
        if record.list == .active { active.remove(record) } else { idle.remove(record) }
        channels[record.name] = nil
        bytes -= record.name.count + HistorySettings.channelOverhead
    }

    /// Makes `record` the most recent of `kind`'s list.
    private func move(_ record: ChannelHistory, to kind: ChannelList.Kind) {
        if record.list == .active { active.remove(record) } else { idle.remove(record) }
        if kind == .active { active.append(record) } else { idle.append(record) }
    }

    /// Back under the memory cap: first the records that keep no messages (their channel's next publish starts
    /// a new epoch), then the history of the channels published least recently, and last the oldest messages of
    /// `sparing`, the channel just published to, whose newest message is always kept.
    private func evict(sparing: ChannelHistory) {
        while bytes > settings.maxMemory {
            if let record = idle.oldest {
                idle.remove(record)
                channels[record.name] = nil
                bytes -= record.name.count + HistorySettings.channelOverhead
            } else if let record = active.oldest, record !== sparing {
                change(record) { record.dropAll() }
                move(record, to: .idle)
            } else if sparing.count > 1 {
                change(sparing) { sparing.dropOldest() }
            } else {
                return
            }
        }
    }
}

/// One page of a channel's history (`GET /api/history`).
struct HistoryPage {
    /// Nil when the channel has no record.
    let current: StreamPosition?
    /// The oldest kept offset (`current.offset + 1` when nothing is kept).
    let oldest: UInt64
    let messages: [SharedFrame]
}

/// A store's size, for `/metrics`.
struct HistoryStatistics: Equatable, Sendable {
    var channels = 0
    var messages = 0
    var bytes = 0
}
