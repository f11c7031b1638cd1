/// What one server PUBLISHes to Redis for a message: a marker, the origin server's id, and the message's
/// encoded WebSocket frame exactly as local subscribers get it, so that other servers deliver it without
/// decoding or re-encoding the JSON.
///
///     "PH" 0x01 | origin server id (16 bytes) | uncompressed text frame (header + payload)
public enum BrokerEnvelope {
    static let marker: [UInt8] = [0x50, 0x48, 0x01]
    static let headerSize = marker.count + 16

    /// A received envelope, checked: the frame is one complete, unfragmented, unmasked text frame whose
    /// length matches its header, so nothing published to the channel by another program reaches a
    /// client as a broken frame.
    public struct Opened {
        public let origin: ServerID
        /// The whole frame, header included.
        public let frame: UnsafeRawBufferPointer
        /// The frame's payload (the JSON text), for compressing.
        public let payload: UnsafeRawBufferPointer
    }

    static func seal(_ frame: SharedFrame, origin: ServerID) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(headerSize + frame.length)
        out.append(contentsOf: marker)
        origin.append(to: &out)
        out.append(contentsOf: frame.buffer)
        return out
    }

    public static func open(_ bytes: UnsafeRawBufferPointer) -> Opened? {
        guard bytes.count >= headerSize + 2, bytes.starts(with: marker) else { return nil }
        let origin = ServerID(bytes: UnsafeRawBufferPointer(rebasing: bytes[marker.count..<headerSize]))
        let frame = UnsafeRawBufferPointer(rebasing: bytes[headerSize...])
        guard let payload = textFramePayload(frame) else { return nil }
        return Opened(origin: origin, frame: frame, payload: payload)
    }

    /// The payload of `frame` when it is one complete, unfragmented, unmasked text frame; nil otherwise.
    static func textFramePayload(_ frame: UnsafeRawBufferPointer) -> UnsafeRawBufferPointer? {
        // FIN, no RSV bits, text opcode; no mask bit.
        guard frame.count >= 2, frame[0] == 0x81, frame[1] & 0x80 == 0 else { return nil }
        var headerLength = 2
        var length = Int(frame[1] & 0x7f)
        if length == 126 {
            headerLength = 4
            guard frame.count >= headerLength else { return nil }
            length = Int(frame[2]) << 8 | Int(frame[3])
        } else if length == 127 {
            headerLength = 10
            guard frame.count >= headerLength else { return nil }
            var value: UInt64 = 0
            for index in 2..<10 { value = value << 8 | UInt64(frame[index]) }
            guard value <= UInt64(Int.max) else { return nil }
            length = Int(value)
        }
        guard frame.count - headerLength == length else { return nil }
        return UnsafeRawBufferPointer(rebasing: frame[headerLength...])
    }
}
