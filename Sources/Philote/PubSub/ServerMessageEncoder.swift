/// Encodes the server's message exactly as the original did (PROTOCOL.md): keys in the order issuer,
/// channel, data; empty channel or data omitted; Go's escapes; one `\n` after the object.
public enum ServerMessageEncoder {
    /// The JSON text of one delivery (without a frame header).
    public static func encode(
        issuer: IssuerID, channel: UnsafeRawBufferPointer, data: UnsafeRawBufferPointer
    ) -> [UInt8] {
        encode(channel: channel, data: data) { issuer.append(to: &$0) }
    }

    /// The same with the issuer given as text (tests, tools): escaped like any other string.
    public static func encode(
        issuer: String, channel: UnsafeRawBufferPointer, data: UnsafeRawBufferPointer
    ) -> [UInt8] {
        var issuer = issuer
        return encode(channel: channel, data: data) { out in
            issuer.withUTF8 { JSONStringEncoder.append(UnsafeRawBufferPointer($0), to: &out) }
        }
    }

    private static func encode(
        channel: UnsafeRawBufferPointer, data: UnsafeRawBufferPointer, issuer: (inout [UInt8]) -> Void
    ) -> [UInt8] {
        var out: [UInt8] = []
        // Room for the escapes of a typical payload without regrowing.
        out.reserveCapacity(80 + channel.count + data.count + data.count / 8)
        out.append(contentsOf: #"{"issuer":""#.utf8)
        issuer(&out)
        out.append(0x22)
        if !channel.isEmpty {
            out.append(contentsOf: #","channel":""#.utf8)
            JSONStringEncoder.append(channel, to: &out)
            out.append(0x22)
        }
        if !data.isEmpty {
            out.append(contentsOf: #","data":""#.utf8)
            JSONStringEncoder.append(data, to: &out)
            out.append(0x22)
        }
        out.append(contentsOf: "}\n".utf8)
        return out
    }

    /// The message as a reader that asked for positions gets it: `json` (as encoded above, ending in `}` and `\n`)
    /// with the epoch and offset after the other keys, as a whole text frame written in place (one allocation, on the
    /// path of every publish with history); `payload(of:)` gives its JSON text, for compressing.
    static func positionedFrame(_ json: UnsafeRawBufferPointer, at position: StreamPosition) -> SharedFrame {
        var digits = (UInt8(0), UInt8(0), UInt8(0), UInt8(0), UInt8(0), UInt8(0), UInt8(0), UInt8(0), UInt8(0),
            UInt8(0), UInt8(0), UInt8(0), UInt8(0), UInt8(0), UInt8(0), UInt8(0), UInt8(0), UInt8(0), UInt8(0),
            UInt8(0))
        return withUnsafeMutableBytes(of: &digits) { digits in
            var value = position.offset
            var count = 0
            repeat {
                digits[19 - count] = UInt8(ascii: "0") + UInt8(value % 10)
                value /= 10
                count += 1
            } while value > 0
            var epoch = position.epoch.text
            return epoch.withUTF8 { epoch in
                let body = json.count - 2
                let length = body + epochKey.count + epoch.count + offsetKey.count + count + 2
                let frame = SharedFrame.make(
                    length: FrameWriter.headerLength(payloadLength: length) + length, isMessage: true)
                var at = frame.bytes + FrameWriter.writeHeader(to: frame.bytes, opcode: .text, payloadLength: length)
                func put(_ bytes: UnsafeRawBufferPointer) {
                    guard let base = bytes.baseAddress, !bytes.isEmpty else { return }
                    at.copyMemory(from: base, byteCount: bytes.count)
                    at += bytes.count
                }
                put(UnsafeRawBufferPointer(rebasing: json[..<body]))
                epochKey.withUnsafeBytes { put($0) }
                put(UnsafeRawBufferPointer(epoch))
                offsetKey.withUnsafeBytes { put($0) }
                put(UnsafeRawBufferPointer(rebasing: digits[(20 - count)...]))
                closing.withUnsafeBytes { put($0) }
                return frame
            }
        }
    }

    /// The JSON text of a server frame (unmasked, its length in the header's second byte).
    static func payload(of frame: SharedFrame) -> UnsafeRawBufferPointer {
        let header: Int =
            switch frame.buffer[1] & 0x7F {
            case 126: 4
            case 127: 10
            default: 2
            }
        return UnsafeRawBufferPointer(rebasing: frame.buffer[header...])
    }

    private static let epochKey = Array(#","epoch":""#.utf8)
    private static let offsetKey = Array(#"","offset":"#.utf8)
    private static let closing = Array("}\n".utf8)
}
