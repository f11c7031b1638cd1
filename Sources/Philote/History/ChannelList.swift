/// A store's channels in order of their last publish, least recent first, linked through the records
/// themselves so that moving one to the end costs O(1).
struct ChannelList {
    enum Kind {
        /// Has kept messages: the memory cap drops their history least recent first; the TTL sweep walks it.
        case active
        /// Only the epoch and offset are kept: dropped, least recent first, before any active history.
        case idle
    }

    let kind: Kind
    private(set) var oldest: ChannelHistory?
    private(set) unowned(unsafe) var newest: ChannelHistory?
    private(set) var count = 0

    init(_ kind: Kind) {
        self.kind = kind
    }

    mutating func append(_ channel: ChannelHistory) {
        channel.list = kind
        channel.older = newest
        channel.newer = nil
        if let newest { newest.newer = channel } else { oldest = channel }
        newest = channel
        count += 1
    }

    mutating func remove(_ channel: ChannelHistory) {
        precondition(channel.list == kind)
        if let older = channel.older { older.newer = channel.newer } else { oldest = channel.newer }
        if let newer = channel.newer { newer.older = channel.older } else { newest = channel.older }
        channel.newer = nil
        channel.older = nil
        count -= 1
    }
}
