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

    /// The message as a reader that asked for positions gets it: `json` (as encoded above) with the epoch and
    /// offset after the other keys.
    static func positioned(_ json: [UInt8], at position: StreamPosition) -> [UInt8] {
        var out = json
        // `}` and `\n` end every encoded message.
        out.removeLast(2)
        out.append(contentsOf: #","epoch":""#.utf8)
        out.append(contentsOf: position.epoch.text.utf8)
        out.append(contentsOf: #"","offset":"#.utf8)
        out.append(contentsOf: String(position.offset).utf8)
        out.append(contentsOf: "}\n".utf8)
        return out
    }
}
