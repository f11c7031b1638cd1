/// The envelopes of history on Redis (see `HistoryScripts`):
///
///     "PH" 0x02 | origin server id (16) | sender (24) | epoch (12) | offset (20 decimal digits) | text frame
///     "PH" 0x03 | origin server id (16) | fetch id (8, big-endian)
///
/// The first is a publish with its position, made by the append script from the head this server sends; the
/// sender is opaque here (the hub's way of not sending a message back to its publisher on its own server). The
/// second marks, in a channel's live stream, where a fetch read its history; only its origin looks at it.
extension BrokerEnvelope {
    static let positionedMarker: [UInt8] = [0x50, 0x48, 0x02]
    static let fetchMarker: [UInt8] = [0x50, 0x48, 0x03]
    public static let senderSize = 24
    static let epochSize = 12
    static let offsetDigits = 20
    static let positionedHeadSize = positionedMarker.count + 16 + senderSize

    public struct OpenedPositioned {
        public let origin: ServerID
        public let sender: UnsafeRawBufferPointer
        public let position: StreamPosition
        /// The whole frame, header included, and its payload (the JSON text as readers without positions get it).
        public let frame: UnsafeRawBufferPointer
        public let payload: UnsafeRawBufferPointer
    }

    /// What this server sends the append script; the script adds the epoch, the offset and the frame.
    static func positionedHead(origin: ServerID, sender: [UInt8]) -> [UInt8] {
        precondition(sender.count == senderSize)
        var out = positionedMarker
        origin.append(to: &out)
        out.append(contentsOf: sender)
        return out
    }

    public static func openPositioned(_ bytes: UnsafeRawBufferPointer) -> OpenedPositioned? {
        let positionStart = positionedHeadSize
        let frameStart = positionStart + epochSize + offsetDigits
        guard bytes.count >= frameStart + 2, bytes.starts(with: positionedMarker) else { return nil }
        let origin = ServerID(bytes: UnsafeRawBufferPointer(rebasing: bytes[3..<19]))
        let epochBytes = bytes[positionStart..<(positionStart + epochSize)]
        guard epochBytes.allSatisfy(isLowerHex) else { return nil }
        var offset: UInt64 = 0
        for digit in bytes[(positionStart + epochSize)..<frameStart] {
            guard (0x30...0x39).contains(digit), offset <= (UInt64(Int64.max) - 9) / 10 else { return nil }
            offset = offset * 10 + UInt64(digit - 0x30)
        }
        guard offset > 0 else { return nil }
        let frame = UnsafeRawBufferPointer(rebasing: bytes[frameStart...])
        guard let payload = textFramePayload(frame), payload.count >= 2, payload[payload.count - 1] == 0x0A,
            payload[payload.count - 2] == UInt8(ascii: "}")
        else { return nil }
        return OpenedPositioned(
            origin: origin, sender: UnsafeRawBufferPointer(rebasing: bytes[19..<positionStart]),
            position: StreamPosition(epoch: Epoch(String(decoding: epochBytes, as: UTF8.self)), offset: offset),
            frame: frame, payload: payload)
    }

    static func sealFetchMarker(origin: ServerID, id: UInt64) -> [UInt8] {
        var out = fetchMarker
        origin.append(to: &out)
        withUnsafeBytes(of: id.bigEndian) { out.append(contentsOf: $0) }
        return out
    }

    public static func openFetchMarker(_ bytes: UnsafeRawBufferPointer) -> (origin: ServerID, id: UInt64)? {
        guard bytes.count == fetchMarker.count + 16 + 8, bytes.starts(with: fetchMarker) else { return nil }
        var id: UInt64 = 0
        for byte in bytes[19...] { id = id << 8 | UInt64(byte) }
        return (ServerID(bytes: UnsafeRawBufferPointer(rebasing: bytes[3..<19])), id)
    }

    private static func isLowerHex(_ byte: UInt8) -> Bool {
        (0x30...0x39).contains(byte) || (0x61...0x66).contains(byte)
    }
}
