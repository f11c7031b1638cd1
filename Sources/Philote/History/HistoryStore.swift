import Synchronization

/// Every channel's history: its epoch, last offset and newest messages, within `HISTORY_SIZE` per channel,
/// `HISTORY_TTL` and `HISTORY_MAX_MEMORY`.
///
/// Only one loop appends (the hub's sequencer), so offsets are given in one order; readers on any loop recover
/// from it. Both take the lock, which also covers the hub's publish number given with each append: a reader that reads
/// the history and the number together knows that exactly the publishes numbered after it are missing from what
/// it read (see `Hub`), which is what lets recovery hand over to live delivery with no gap and no duplicate.
final class HistoryStore: @unchecked Sendable {
    private let settings: HistorySettings
    private let lock = Mutex(())
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
        lock.withLock { _ in
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

    /// What a reader at `position` (nil: a reader with no position) is missing from `channel`: the kept messages
    /// after it, at most `maxBytes` of frames (but at least one), with the channel's current position and the
    /// hub's publish number (`sequence`, read under the lock). Any loop.
    func read(
        _ channel: [UInt8], after position: StreamPosition?, maxBytes: Int, now: UInt64, sequence: () -> UInt64
    ) -> HistoryRead {
        lock.withLock { _ in
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
        lock.withLock { _ in
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
        lock.withLock { _ in
            guard let deadline = expiry(now) else { return }
            while let oldest = active.oldest, let newest = oldest.newestTime, newest <= deadline {
                change(oldest) { oldest.dropAll() }
                move(oldest, to: .idle)
            }
        }
    }

    /// Channels with a record, messages kept, and the bytes they cost (for `/metrics`).
    func statistics() -> HistoryStatistics {
        lock.withLock { _ in HistoryStatistics(channels: channels.count, messages: kept, bytes: bytes) }
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

    private func makeRecord(_ channel: [UInt8]) -> ChannelHistory {
        let record = ChannelHistory(name: channel, epoch: .random())
        channels[channel] = record
        idle.append(record)
        bytes += channel.count + HistorySettings.channelOverhead
        return record
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
