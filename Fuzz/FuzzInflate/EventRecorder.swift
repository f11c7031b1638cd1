import Philote

/// Records a reader's events; pongs and closes are never sent by FrameStreamCheck, so they fail at once.
final class EventRecorder: WebSocketEventSink {
    var events: [RecordedEvent] = []
    let limit: Int

    init(limit: Int) {
        self.limit = limit
    }

    func receivedMessage(_ opcode: Opcode, _ payload: UnsafeRawBufferPointer) {
        precondition(payload.count <= limit, "delivered \(payload.count) bytes over a limit of \(limit)")
        events.append(.message(opcode, Array(payload)))
    }

    func receivedPing(_ payload: UnsafeRawBufferPointer) {
        events.append(.ping(Array(payload)))
    }

    func receivedPong(_ payload: UnsafeRawBufferPointer) {
        preconditionFailure("pong reported, none sent")
    }

    func receivedClose(code: UInt16?, reason: UnsafeRawBufferPointer) {
        preconditionFailure("close reported, none sent")
    }
}
