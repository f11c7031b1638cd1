/// A channel's history as a shared store (Redis) answered a fetch: what `HistoryStore.merge` joins to the
/// server's own copy.
public enum RemoteHistory: Sendable {
    /// The store could not be asked, or did not answer.
    case unavailable
    /// The channel has no history there.
    case none
    case found(Found)

    public struct Found: Sendable {
        public let epoch: Epoch
        /// The channel's last offset when read.
        public let last: UInt64
        /// The store's clock when read, and each message's publish time on it (ms), for HISTORY_TTL.
        public let now: UInt64
        /// The newest kept messages after the fetch's offset, oldest first, each a whole text frame as readers
        /// without positions get it.
        public var messages: [(offset: UInt64, time: UInt64, frame: [UInt8])]

        public init(epoch: Epoch, last: UInt64, now: UInt64, messages: [(offset: UInt64, time: UInt64, frame: [UInt8])]) {
            self.epoch = epoch
            self.last = last
            self.now = now
            self.messages = messages
        }
    }
}
