/// Encodes the server's message exactly as the original did (PROTOCOL.md): keys in the order issuer,
/// channel, data; empty channel or data omitted; Go's escapes; one `\n` after the object.
public enum ServerMessageEncoder {
    /// The JSON text of one delivery (without a frame header).
    public static func encode(issuer: String, channel: UnsafeRawBufferPointer, data: UnsafeRawBufferPointer) -> [UInt8]
    {
        var out: [UInt8] = []
        out.reserveCapacity(32 + issuer.utf8.count + channel.count + data.count + data.count / 8)
        out.append(contentsOf: #"{"issuer":""#.utf8)
        var issuer = issuer
        issuer.withUTF8 { JSONStringEncoder.append(UnsafeRawBufferPointer($0), to: &out) }
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
}
