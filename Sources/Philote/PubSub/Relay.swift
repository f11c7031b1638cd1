/// What the hub needs of a broker that joins several servers into one hub: the hub hands it every local
/// publish and tells it which channels this server reads. A protocol here rather than the Redis broker's own
/// type, so that the hub depends on no broker and the broker on no hub; `RedisBroker` conforms in Server/,
/// which composes the two.
protocol Relay: AnyObject, Sendable {
    /// The loop it lives on (the hub's loop 0): every call below is made on that loop's thread.
    var loop: EventLoop { get }
    /// A publish made on this server, for the other servers' readers of `channel`.
    func publish(_ frame: SharedFrame, to channel: [UInt8])
    /// This server gained its first reader of `channel` (`present`) or lost its last.
    func readersChanged(_ channel: [UInt8], present: Bool)
}
