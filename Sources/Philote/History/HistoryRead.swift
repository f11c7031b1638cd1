/// What a history store answers a reader that gives its position (or none): the channel's position now, how
/// the reader's position relates to it, and the kept messages after it.
struct HistoryRead {
    enum Status: Equatable {
        /// The reader's position is in the channel's epoch and kept history: `messages` continue it.
        case continues
        /// The reader gave no position.
        case new
        case epochChanged
        case tooOld
        case ahead
    }

    let status: Status
    /// The channel's position when read; nil when the channel has no record (nothing published, or dropped).
    let current: StreamPosition?
    /// Kept messages after the reader's position, oldest first (only for `continues`), within the byte budget.
    let messages: [SharedFrame]
    /// The offset of the last message in `messages` (the reader's own offset when there are none).
    let through: UInt64
    /// True when `messages` reach the channel's newest message: the reader has caught up.
    let caughtUp: Bool
    /// The hub's publish number read together with the history: publishes numbered after it are not in it.
    let sequence: UInt64
}
