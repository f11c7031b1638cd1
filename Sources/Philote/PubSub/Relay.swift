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
    /// History on Redis: appends `frame` (a plain text frame) to `channel`'s history and publishes it with its
    /// position and `sender` (24 opaque bytes, handed back with it); false when it was dropped.
    @discardableResult
    func append(_ frame: SharedFrame, to channel: [UInt8], sender: [UInt8]) -> Bool
    /// History on Redis: reads `channel`'s newest `count` messages after `after`, joined to this server's live
    /// stream of it (see RedisBroker+History.swift), and calls `completion` on `loop`.
    func fetch(_ channel: [UInt8], after: UInt64, count: Int, completion: @escaping (RemoteHistory) -> Void)
}
