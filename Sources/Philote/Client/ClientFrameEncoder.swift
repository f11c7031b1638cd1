/// Encodes the frames a client sends: always masked (RFC 6455 section 5.3), with a key chosen per frame by
/// the caller, so tests can fix it and the client can draw it from the system's random generator.
public enum ClientFrameEncoder {
    /// One whole (FIN) frame. `maskKey` is in wire order loaded as a little-endian word, the same convention
    /// as `FrameHeader.maskKey` and `FrameParser.applyMask`.
    public static func frame(_ opcode: Opcode, payload: some Collection<UInt8>, maskKey: UInt32) -> [UInt8] {
        let length = payload.count
        let header = FrameWriter.headerLength(payloadLength: length)
        var frame = [UInt8](repeating: 0, count: header + 4 + length)
        frame.withUnsafeMutableBytes { out in
            let base = out.baseAddress!
            _ = FrameWriter.writeHeader(to: base, opcode: opcode, payloadLength: length)
            // The MASK bit sits in the second byte next to the length that writeHeader wrote.
            base.storeBytes(of: base.load(fromByteOffset: 1, as: UInt8.self) | 0x80, toByteOffset: 1, as: UInt8.self)
            base.storeBytes(of: maskKey.littleEndian, toByteOffset: header, as: UInt32.self)
            var offset = header + 4
            for byte in payload {
                base.storeBytes(of: byte, toByteOffset: offset, as: UInt8.self)
                offset += 1
            }
            FrameParser.applyMask(maskKey, to: base + header + 4, count: length)
        }
        return frame
    }

    /// A close frame: `code` (nil for an empty payload) and a reason cut to the 125-byte control limit on a
    /// UTF-8 boundary.
    public static func close(code: UInt16?, reason: String = "", maskKey: UInt32) -> [UInt8] {
        var payload: [UInt8] = []
        if let code {
            payload = [UInt8(code >> 8), UInt8(code & 0xFF)]
            var reasonBytes = Array(reason.utf8.prefix(123))
            // Drop a cut multi-byte sequence: a close reason must be valid UTF-8.
            while String(validating: reasonBytes, as: UTF8.self) == nil { reasonBytes.removeLast() }
            payload += reasonBytes
        }
        return frame(.close, payload: payload, maskKey: maskKey)
    }
}
