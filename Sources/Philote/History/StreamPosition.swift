/// Where a reader stands in a channel: the epoch and the offset of the last message it has (0: none yet).
public struct StreamPosition: Hashable, Sendable {
    public let epoch: Epoch
    public let offset: UInt64

    public init(epoch: Epoch, offset: UInt64) {
        self.epoch = epoch
        self.offset = offset
    }
}
