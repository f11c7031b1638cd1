/// A publish on its way to the sequencer (history on): the message as plain readers get it, its frames, and who sent
/// it (so that it is not delivered back).
struct Submission: @unchecked Sendable {
    let delivery: Delivery
    let json: [UInt8]
    let channel: [UInt8]
    /// The sender's subscriber, as an address only: compared, never followed (see `LocalHub.deliver`).
    let excluded: UnsafeMutableRawPointer?
    let issuer: IssuerID?
    let tally: PublishTally?

    var cost: Int {
        var bytes = 128 + json.count + channel.count + delivery.plain.length
        bytes += delivery.length - delivery.plain.length
        return bytes
    }
}
