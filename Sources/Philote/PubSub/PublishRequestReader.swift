/// Reads the body of `POST /api/publish`: one `{"channel": ..., "data": ...}` object, or a JSON array of
/// them, under the rules of a WebSocket client's message (PROTOCOL.md): keys match ASCII
/// case-insensitively, the last duplicate wins, `channel` and `data` are strings, `null` or absent mean
/// empty, other members are ignored.
///
/// The body is read as a strict document (`JSONReader.Rules.strict`): any JSON error anywhere in it is
/// reported first, with its byte offset; only a well-formed body is refused for its shape, and then for the
/// first problem in document order. Strict reading also refuses invalid UTF-8 in strings, and nothing
/// outside strings may be other than ASCII, so an accepted body is UTF-8 (RFC 8259 section 8.1) as a whole.
public enum PublishRequestReader {
    public static func read(_ body: [UInt8]) -> Result<[ClientMessage], ClientMessageReader.Failure> {
        body.withUnsafeBytes { input in
            var reader = JSONReader(input, rules: .strict(maxDepth: ClientMessageReader.maxDepth))
            var messages: [ClientMessage] = []
            var problem: String?
            do throws(JSONReader.Failure) {
                try readBody(&reader, into: &messages, problem: &problem)
                try reader.finish()
            } catch {
                return .failure(.init(reason: "invalid JSON: \(error.reason) at byte \(error.offset)"))
            }
            if let problem { return .failure(.init(reason: problem)) }
            return .success(messages)
        }
    }

    private static func readBody(
        _ reader: inout JSONReader, into messages: inout [ClientMessage], problem: inout String?
    ) throws(JSONReader.Failure) {
        switch try reader.expectValue() {
        case .object:
            try readMessage(&reader, into: &messages, problem: &problem)
        case .array:
            guard try reader.beginArray() else {
                note("no messages in the list", in: &problem)
                return
            }
            repeat {
                if try reader.expectValue() == .object {
                    try readMessage(&reader, into: &messages, problem: &problem)
                } else {
                    note("each message must be a JSON object", in: &problem)
                    try reader.skipValue()
                }
            } while try reader.nextElement()
        default:
            note("body must be a JSON object or an array of objects", in: &problem)
            try reader.skipValue()
        }
    }

    /// Reads the object at the cursor; appends it as a message unless a problem has been found.
    private static func readMessage(
        _ reader: inout JSONReader, into messages: inout [ClientMessage], problem: inout String?
    ) throws(JSONReader.Failure) {
        var message = ClientMessage(channel: [], data: [])
        if try reader.beginObject() {
            repeat {
                let field = try reader.withNextKey { ClientMessageField($0) }
                if field == .other || field == .auth {
                    try reader.skipValue()
                    continue
                }
                let value: [UInt8]
                switch try reader.expectValue() {
                case .string: value = try reader.readStringBytes()
                case .null:
                    try reader.readNull()
                    value = []
                default:
                    note("\(field.name) must be a string", in: &problem)
                    try reader.skipValue()
                    continue
                }
                if field == .channel { message.channel = value } else { message.data = value }
            } while try reader.nextMember()
        }
        if problem == nil { messages.append(message) }
    }

    /// Keeps the first problem: the one a reader going through the body in order meets first.
    private static func note(_ reason: String, in problem: inout String?) {
        if problem == nil { problem = reason }
    }
}
