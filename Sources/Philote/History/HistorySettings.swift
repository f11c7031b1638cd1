/// What the history store may keep (`HISTORY_SIZE`, `HISTORY_TTL`, `HISTORY_MAX_MEMORY`).
public struct HistorySettings: Sendable {
    /// Messages kept per channel.
    public var size: Int
    /// Milliseconds a message stays recoverable.
    public var ttl: UInt64
    /// Bytes the store may hold: its messages' frames, and a fixed cost per message and per channel.
    public var maxMemory: Int

    public init(size: Int, ttl: UInt64, maxMemory: Int) {
        precondition(size > 0 && ttl > 0 && maxMemory > 0)
        self.size = size
        self.ttl = ttl
        self.maxMemory = maxMemory
    }

    /// What one kept message costs beyond its frame: its slot and the frame's object header.
    static let messageOverhead = 48
    /// What a channel's record costs beyond its name: the record, its dictionary slot, its list links.
    static let channelOverhead = 160
}
