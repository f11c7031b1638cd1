/// Reads the body of `POST /api/publish`: one `{"channel": ..., "data": ...}` object, or a JSON array of
/// them, under the rules of a WebSocket client's message (PROTOCOL.md): keys match ASCII
/// case-insensitively, the last duplicate wins, `channel` and `data` are strings, `null` or absent mean
/// empty, other members are ignored. Not on the message path: the strict document parser is fine here.
public enum PublishRequestReader {
    public static func read(_ body: [UInt8]) -> Result<[ClientMessage], ClientMessageReader.Failure> {
        let document: JSONValue
        do {
            document = try JSONParser.parse(body, maxDepth: ClientMessageReader.maxDepth)
        } catch {
            return .failure(.init(reason: "invalid JSON: \(error.reason) at byte \(error.offset)"))
        }
        // RFC 8259 section 8.1: the body is UTF-8. The parser validates a string's raw bytes but not across
        // an escape (E2 82 `\n` AC passes it), so a body it accepts is checked whole. Only accepted bodies pay
        // for the pass; a refusal keeps the parser's offset.
        var utf8 = UTF8Validator()
        guard body.withUnsafeBytes({ utf8.validate($0) }), utf8.isComplete else {
            return .failure(.init(reason: "invalid JSON: the body is not UTF-8"))
        }
        switch document {
        case .object:
            return message(document).map { [$0] }
        case .array(let elements):
            guard !elements.isEmpty else { return .failure(.init(reason: "no messages in the list")) }
            var messages: [ClientMessage] = []
            messages.reserveCapacity(elements.count)
            for element in elements {
                switch message(element) {
                case .success(let read): messages.append(read)
                case .failure(let failure): return .failure(failure)
                }
            }
            return .success(messages)
        default:
            return .failure(.init(reason: "body must be a JSON object or an array of objects"))
        }
    }

    private static func message(_ value: JSONValue) -> Result<ClientMessage, ClientMessageReader.Failure> {
        guard case .object(let members) = value else {
            return .failure(.init(reason: "each message must be a JSON object"))
        }
        var message = ClientMessage(channel: [], data: [])
        for (key, member) in members {
            let isChannel = key.asciiCaseInsensitiveEquals("channel")
            guard isChannel || key.asciiCaseInsensitiveEquals("data") else { continue }
            let bytes: [UInt8]
            switch member {
            case .string(let text): bytes = Array(text.utf8)
            case .null: bytes = []
            default: return .failure(.init(reason: "\(isChannel ? "channel" : "data") must be a string"))
            }
            if isChannel { message.channel = bytes } else { message.data = bytes }
        }
        return .success(message)
    }
}
