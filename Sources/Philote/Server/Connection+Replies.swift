/// Replies made for this connection alone, compressed when it negotiated permessage-deflate.
extension Connection {
    /// Queues a reply to what this peer sent (echo, error replies). Here not reading is the backpressure:
    /// above `MAX_BACKPRESSURE` unsent bytes the server stops reading from the peer until it catches up.
    public func send(_ opcode: Opcode, _ payload: UnsafeRawBufferPointer) {
        guard phase == .open else { return }
        let windowBits = subscriber.windowBits
        if windowBits != 0 && payload.count >= services.configuration.compressionMinSize {
            let compressed = services.deflater(windowBits: Int(windowBits)).compress(payload)
            // Incompressible data goes out as it is: RFC 7692 lets every message choose.
            if compressed.count < payload.count {
                services.metrics.compressed(from: payload.count, to: compressed.count)
                subscriber.enqueue(
                    compressed.withUnsafeBytes { FrameWriter.frame(opcode, payload: $0, rsv: FrameHeader.rsv1) },
                    compressed: true)
                return
            }
        }
        subscriber.enqueue(FrameWriter.frame(opcode, payload: payload))
    }
}
