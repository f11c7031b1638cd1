/// What the WebSocket session reports while it reads frames. It must not touch the session itself meanwhile
/// (the session is being read): replies go through the subscriber, the close through the phase.
extension Connection: WebSocketEventSink {
    public func receivedMessage(_ opcode: Opcode, _ payload: UnsafeRawBufferPointer) {
        guard phase == .open else { return }
        services.metrics.messagesIn.add(fromOwner: 1)
        services.application.received(self, opcode: opcode, payload: payload)
    }

    public func receivedPing(_ payload: UnsafeRawBufferPointer) {
        guard phase == .open else { return }
        subscriber.enqueue(FrameWriter.frame(.pong, payload: payload))
    }

    public func receivedPong(_ payload: UnsafeRawBufferPointer) {}

    public func receivedClose(code: UInt16?, reason: UnsafeRawBufferPointer) {
        guard phase == .open else { return }
        // Echo the peer's code (section 5.5.1); an empty close is answered with an empty close.
        closeEchoing(code: code)
    }
}
