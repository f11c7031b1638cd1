/// Encodes server frames (never masked, section 5.1).
public enum FrameWriter {
    /// Header size for a payload of `length` bytes.
    @inline(__always)
    public static func headerLength(payloadLength length: Int) -> Int {
        length < 126 ? 2 : (length <= 0xFFFF ? 4 : 10)
    }

    /// Writes a frame header at `start` and returns its length.
    @inline(__always)
    public static func writeHeader(
        to start: UnsafeMutableRawPointer, opcode: Opcode, payloadLength length: Int, fin: Bool = true,
        rsv: UInt8 = 0
    ) -> Int {
        start.storeBytes(of: (fin ? 0x80 : 0) | rsv | opcode.rawValue, as: UInt8.self)
        if length < 126 {
            start.storeBytes(of: UInt8(length), toByteOffset: 1, as: UInt8.self)
            return 2
        } else if length <= 0xFFFF {
            start.storeBytes(of: 126, toByteOffset: 1, as: UInt8.self)
            start.storeBytes(of: UInt16(length).bigEndian, toByteOffset: 2, as: UInt16.self)
            return 4
        } else {
            start.storeBytes(of: 127, toByteOffset: 1, as: UInt8.self)
            start.storeBytes(of: UInt64(length).bigEndian, toByteOffset: 2, as: UInt64.self)
            return 10
        }
    }

    /// A whole frame as one shareable buffer: header plus payload.
    public static func frame(_ opcode: Opcode, payload: UnsafeRawBufferPointer, rsv: UInt8 = 0) -> SharedFrame {
        let header = headerLength(payloadLength: payload.count)
        let frame = SharedFrame.make(length: header + payload.count, isMessage: !opcode.isControl)
        let start = frame.bytes
        _ = writeHeader(to: start, opcode: opcode, payloadLength: payload.count, rsv: rsv)
        if let source = payload.baseAddress, !payload.isEmpty {
            (start + header).copyMemory(from: source, byteCount: payload.count)
        }
        return frame
    }

    /// A close frame with `code` and a reason cut to fit the 125-byte control payload limit.
    public static func closeFrame(_ code: UInt16?, reason: String = "") -> SharedFrame {
        var payload: [UInt8] = []
        if let code {
            payload = [UInt8(code >> 8), UInt8(code & 0xFF)]
            // Cut at a character boundary: a reason ending in half a character is invalid UTF-8 (1007).
            var length = 0
            for scalar in reason.unicodeScalars {
                let width = UTF8.width(scalar)
                if length + width > 123 { break }
                length += width
            }
            payload.append(contentsOf: reason.utf8.prefix(length))
        }
        return payload.withUnsafeBytes { frame(.close, payload: $0) }
    }
}
