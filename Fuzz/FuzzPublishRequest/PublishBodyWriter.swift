import Philote

/// Writes messages back as a `POST /api/publish` body in the plainest form (no whitespace, keys in lower
/// case, every string escaped by the server's own encoder), so that the fuzz target can check that what
/// the reader accepted reads back the same from a body it did not choose.
enum PublishBodyWriter {
    /// One `{"channel":...,"data":...}` object.
    static func object(_ message: ClientMessage) -> [UInt8] {
        var out = Array(#"{"channel":""#.utf8)
        message.channel.withUnsafeBytes { JSONStringEncoder.append($0, to: &out) }
        out += #"","data":""#.utf8
        message.data.withUnsafeBytes { JSONStringEncoder.append($0, to: &out) }
        out += #""}"#.utf8
        return out
    }

    /// A JSON array of objects.
    static func list(_ messages: [ClientMessage]) -> [UInt8] {
        var out: [UInt8] = [UInt8(ascii: "[")]
        for (index, message) in messages.enumerated() {
            if index > 0 { out.append(UInt8(ascii: ",")) }
            out += object(message)
        }
        out.append(UInt8(ascii: "]"))
        return out
    }
}
