/// One channel's record in a history store: its epoch, the last offset given, and the messages still kept,
/// oldest first. Touched only under its store's lock.
final class ChannelHistory {
    struct Message {
        /// The frame a reader that asked for positions gets (a text frame of the JSON with epoch and offset).
        let frame: SharedFrame
        /// When it was published (monotonic milliseconds).
        let time: UInt64
    }

    let name: [UInt8]
    let epoch: Epoch
    /// The offset of the newest message ever published here (kept when the messages are dropped).
    private(set) var lastOffset: UInt64 = 0
    /// Kept messages from `start` on: the oldest is dropped by moving `start`, and the array is compacted
    /// once the dropped part is the larger half, so both ends cost O(1) amortised.
    private var messages: [Message] = []
    private var start = 0
    /// Bytes the kept messages cost, their overheads included.
    private(set) var bytes = 0
    /// Which of its store's lists holds it, and its neighbours there (least recently published first).
    var list: ChannelList.Kind = .idle
    var newer: ChannelHistory?
    unowned(unsafe) var older: ChannelHistory?

    /// A record whose next message gets offset `after + 1` (a copy of a shared store's channel starts where the
    /// copy does).
    init(name: [UInt8], epoch: Epoch, after: UInt64 = 0) {
        self.name = name
        self.epoch = epoch
        lastOffset = after
    }

    var count: Int { messages.count - start }
    var isEmpty: Bool { count == 0 }
    /// The offset of the oldest kept message; `lastOffset + 1` when none is kept.
    var firstOffset: UInt64 { lastOffset + 1 - UInt64(count) }
    /// When the newest kept message was published; nil when none is kept.
    var newestTime: UInt64? { isEmpty ? nil : messages[messages.count - 1].time }

    /// The next offset, which `append` will give.
    var nextOffset: UInt64 { lastOffset + 1 }

    func append(_ frame: SharedFrame, time: UInt64) {
        messages.append(Message(frame: frame, time: time))
        lastOffset += 1
        bytes += frame.length + HistorySettings.messageOverhead
    }

    func dropOldest() {
        precondition(!isEmpty)
        let cost = messages[start].frame.length + HistorySettings.messageOverhead
        // The slot is overwritten with the newest message's frame so the dropped frame is freed now, not at
        // compaction; what stays in the slot is shared, so it costs nothing.
        messages[start] = messages[messages.count - 1]
        start += 1
        if start == messages.count {
            messages.removeAll(keepingCapacity: true)
            start = 0
        } else if start >= 32 && start * 2 >= messages.count {
            messages.removeFirst(start)
            start = 0
        }
        bytes -= cost
    }

    /// Puts `older` (oldest first, ending at offset `firstOffset - 1`) before the kept messages.
    func prepend(_ older: [Message]) {
        guard !older.isEmpty else { return }
        messages.replaceSubrange(0..<start, with: older)
        start = 0
        for message in older { bytes += message.frame.length + HistorySettings.messageOverhead }
    }

    /// Drops every message; the record and its offsets stay.
    func dropAll() {
        messages.removeAll()
        start = 0
        bytes = 0
    }

    /// Drops the messages published at or before `deadline`, oldest first.
    func dropPublished(atOrBefore deadline: UInt64) {
        while !isEmpty && messages[start].time <= deadline { dropOldest() }
    }

    /// The kept message with `offset` (which must be kept).
    func message(at offset: UInt64) -> Message {
        messages[start + Int(offset - firstOffset)]
    }
}
