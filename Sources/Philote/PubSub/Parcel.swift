/// A publish on its way to another loop. Its frames are immutable and their reference counts atomic,
/// so handing them across threads is safe although ManagedBuffer does not say so.
struct Parcel: @unchecked Sendable {
    let delivery: Delivery
    let channel: [UInt8]
    let sequence: UInt64
    /// Set for publishes over HTTP, whose answer counts the readers reached on every loop.
    let tally: PublishTally?
    /// Came from another server through the broker: not to be sent back to it.
    let fromBroker: Bool
    /// With history, the sender (on whatever loop) that must not get it back; see `Submission`.
    var excluded: UnsafeMutableRawPointer? = nil
    var issuer: IssuerID? = nil

    /// What it holds while it waits for another loop: its frames, its channel name, and about as much again for
    /// the parcel and the frames' headers.
    var cost: Int {
        var bytes = 128 + channel.count + delivery.plain.length
        bytes += delivery.length - delivery.plain.length
        return bytes
    }
}
