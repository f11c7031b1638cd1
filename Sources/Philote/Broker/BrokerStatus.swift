import Synchronization

/// The broker's figures for `/readyz` and `/metrics`: written by the broker's loop only, read by any
/// thread (scrapes, probes).
public final class BrokerStatus: Sendable {
    /// Instances whose publish and subscribe connections are both up.
    let connectedShards = Atomic<Int>(0)
    public let shardCount: Int
    /// Envelopes handed to Redis, and received from it (other servers' messages).
    let published = Atomic<UInt64>(0)
    let received = Atomic<UInt64>(0)
    /// Publishes not sent to Redis, by reason (`Drop.rawValue`).
    let dropped: InlineArray<2, Atomic<UInt64>> = InlineArray { _ in Atomic(0) }
    /// Received payloads that were not a well-formed envelope (another program publishing on our channels).
    let malformed = Atomic<UInt64>(0)
    /// Successful (re)connections after the first.
    let reconnects = Atomic<UInt64>(0)

    public enum Drop: Int, CaseIterable, Sendable {
        /// The instance for the channel was not connected.
        case disconnected
        /// More than `REDIS_MAX_PENDING` bytes were waiting for Redis.
        case queueFull

        var label: String {
            switch self {
            case .disconnected: "disconnected"
            case .queueFull: "queue_full"
            }
        }
    }

    init(shardCount: Int) {
        self.shardCount = shardCount
    }

    /// Every instance is connected: the server sees all other servers' messages.
    public var isConnected: Bool { connectedShards.load(ordering: .relaxed) == shardCount }

    func drop(_ reason: Drop) {
        dropped[reason.rawValue].add(fromOwner: 1)
    }
}
