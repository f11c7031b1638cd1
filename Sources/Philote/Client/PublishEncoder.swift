/// The message a client publishes: `{"channel":"<name>","data":"<text>"}`, the shape every Philote client
/// sends (PROTOCOL.md, "Messages"). Escaped with the server's own JSON string encoder, so any text is safe.
public enum PublishEncoder {
    public static func json(channel: String, data: String) -> [UInt8] {
        var out: [UInt8] = Array(#"{"channel":""#.utf8)
        var channel = channel
        channel.withUTF8 { JSONStringEncoder.append(UnsafeRawBufferPointer($0), to: &out) }
        out += Array(#"","data":""#.utf8)
        var data = data
        data.withUTF8 { JSONStringEncoder.append(UnsafeRawBufferPointer($0), to: &out) }
        out += Array(#""}"#.utf8)
        return out
    }
}
