/// Routes a publish to every loop: the publishing loop delivers at once, every other loop gets the one
/// shared frame through its inbox (one hand-off per loop per publish). Inboxes are FIFO, so messages
/// from one publisher reach every subscriber in publish order.
final class Hub: @unchecked Sendable {
    private let loops: [EventLoop]
    private let locals: [LocalHub]

    init(loops: [EventLoop]) {
        self.loops = loops
        locals = loops.map { _ in LocalHub() }
    }

    func local(_ loop: EventLoop) -> LocalHub { locals[loop.index] }

    /// Called on the sender's loop. Returns the number of local recipients.
    @discardableResult
    func publish(_ frame: SharedFrame, to channel: [UInt8], from sender: Session) -> Int {
        let origin = sender.connection.loop.index
        let delivered = locals[origin].deliver(frame, to: channel, except: sender)
        if loops.count > 1 {
            let parcel = Parcel(frame: frame, channel: channel)
            for (index, loop) in loops.enumerated() where index != origin {
                let local = locals[index]
                loop.execute { local.deliver(parcel.frame, to: parcel.channel, except: nil) }
            }
        }
        return delivered
    }

    /// A frame on its way to another loop. The frame is immutable and its reference count atomic, so
    /// handing it across threads is safe although ManagedBuffer does not say so.
    private struct Parcel: @unchecked Sendable {
        let frame: SharedFrame
        let channel: [UInt8]
    }
}
