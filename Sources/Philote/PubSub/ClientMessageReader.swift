/// Reads a client message strictly and without building a document: keys match `channel`, `data` and `auth`
/// ASCII case-insensitively (the Go client sends `Channel`/`Data`), the last duplicate wins, `data` and
/// `channel` must be strings (null or absent mean empty), other members are validated and skipped, and
/// only whitespace may follow the object. The JSON itself is read by `JSONReader` under `rules`.
///
/// An object with an `auth` member and neither `channel` nor `data` is a token refresh (`auth` must then be a
/// string); with either of those it is a publish, as it always was, and `auth` is skipped like any other key.
public enum ClientMessageReader {
    public struct Failure: Error, Equatable, Sendable {
        /// Short, safe to send back in an `error` reply (never echoes the payload).
        public var reason: String
    }

    static let maxDepth = 64

    /// The wire contract's JSON rules (PROTOCOL.md), as the original server applied them: invalid UTF-8 in a
    /// string (possible in a binary frame) becomes U+FFFD as Go's decoder does, skipped numbers are checked
    /// for their syntax only, and no value may sit inside more than 64 containers.
    static let rules = JSONReader.Rules(
        maxDepth: maxDepth, nesting: .everyValue, invalidUTF8: .replace, skippedNumbersMustBeFinite: false)

    public static func read(_ bytes: UnsafeRawBufferPointer) -> Result<ClientMessage, Failure> {
        var reader = JSONReader(bytes, rules: rules)
        guard reader.peekValueKind() == .object else {
            return .failure(Failure(reason: "message must be a JSON object"))
        }
        var message = ClientMessage(channel: [], data: [])
        var publishes = false
        // The last `auth` member: its string, or nil when it was not a string.
        var auth: [UInt8]?? = .none
        do throws(JSONReader.Failure) {
            if try reader.beginObject() {
                repeat {
                    let field = try reader.withNextKey { ClientMessageField($0) }
                    switch field {
                    case .auth:
                        if reader.peekValueKind() == .string {
                            auth = .some(try reader.readStringBytes())
                        } else {
                            auth = .some(nil)
                            if let failure = skipOther(&reader) { return .failure(failure) }
                        }
                    case .channel, .data:
                        publishes = true
                        let value: [UInt8]
                        switch reader.peekValueKind() {
                        case .string: value = try reader.readStringBytes()
                        case .null:
                            try reader.readNull()
                            value = []
                        default: return .failure(Failure(reason: "\(field.name) must be a string"))
                        }
                        if field == .channel { message.channel = value } else { message.data = value }
                    case .other:
                        if let failure = skipOther(&reader) { return .failure(failure) }
                    }
                } while try reader.nextMember()
            }
            try reader.finish()
        } catch {
            return .failure(Failure(reason: reason(for: error, inOtherMember: false)))
        }
        if !publishes, case .some(let token) = auth {
            guard let token else { return .failure(Failure(reason: "auth must be a string")) }
            message.token = token
        }
        return .success(message)
    }

    /// Skips a member's value; the failure to report when it is malformed (with the reasons of a skipped member).
    private static func skipOther(_ reader: inout JSONReader) -> Failure? {
        do throws(JSONReader.Failure) {
            try reader.skipValue()
            return nil
        } catch {
            return Failure(reason: reason(for: error, inOtherMember: true))
        }
    }

    /// The refusal reasons clients have always seen. Inside a skipped member a missing `,` or closing bracket
    /// was plain "invalid JSON"; only the message object's own said what was expected.
    private static func reason(for failure: JSONReader.Failure, inOtherMember: Bool) -> String {
        switch failure.kind {
        case .expectedKey: "invalid JSON: expected a key"
        case .expectedColon: "invalid JSON: expected ':'"
        case .unterminatedObject, .expectedCommaOrBrace:
            inOtherMember ? "invalid JSON" : "invalid JSON: expected ',' or '}'"
        case .trailingData: "invalid JSON: data after the object"
        case .nestingTooDeep: "invalid JSON: nesting too deep"
        case .unterminatedString, .unterminatedEscape: "invalid JSON: unterminated string"
        case .invalidEscape, .invalidUnicodeEscape: "invalid JSON: bad escape"
        case .controlCharacter: "invalid JSON: control character in string"
        // The end of the input or a stray byte where a value belongs, misspelt literals and numbers, an
        // array's missing `,` or `]`. (Out-of-range numbers and invalid UTF-8 are accepted under `rules`.)
        case .unexpectedEnd, .unexpectedCharacter, .expected, .invalidLiteral, .invalidNumber, .numberOutOfRange,
            .unterminatedArray, .expectedCommaOrBracket, .invalidUTF8:
            "invalid JSON"
        }
    }
}
