extension JSONReader {
    /// Why a read failed, and where: `offset` is the byte offset in the input at which the reader stood
    /// (the offending byte, or the input's length when it ended too early).
    public struct Failure: Error, Equatable, Sendable {
        public enum Kind: Sendable, Equatable {
            /// The input ended where a value was needed.
            case unexpectedEnd
            /// A byte that starts no JSON value, where a value was needed.
            case unexpectedCharacter
            /// A value of another kind than the caller asked for (`readString` on a number).
            case expected(ValueKind)
            /// `true`, `false` or `null` misspelt or cut short.
            case invalidLiteral
            /// A number's text breaks the grammar (`-`, `1.`, `1e`).
            case invalidNumber
            /// A number that is no finite `Double`.
            case numberOutOfRange
            case expectedKey
            case expectedColon
            /// The input ended inside an object, where a `,` or `}` was needed.
            case unterminatedObject
            case expectedCommaOrBrace
            /// The input ended inside an array, where a `,` or `]` was needed.
            case unterminatedArray
            case expectedCommaOrBracket
            /// Something other than whitespace after the top-level value.
            case trailingData
            case nestingTooDeep
            case unterminatedString
            /// A backslash is the input's last byte.
            case unterminatedEscape
            /// A backslash followed by a letter JSON gives no meaning.
            case invalidEscape
            /// `\u` not followed by four hex digits.
            case invalidUnicodeEscape
            /// A byte below 0x20 inside a string.
            case controlCharacter
            /// Under `Rules.InvalidUTF8.refuse`: a string is not valid UTF-8.
            case invalidUTF8
        }

        public var kind: Kind
        public var offset: Int

        public init(kind: Kind, offset: Int) {
            self.kind = kind
            self.offset = offset
        }

        /// The failure in a few words, without the input (safe to send back): the wording the strict
        /// document parser always used, which `POST /api/publish` refusals carry.
        public var reason: String {
            switch kind {
            case .unexpectedEnd: "unexpected end of input"
            case .unexpectedCharacter: "unexpected character"
            case .expected(let kind): "expected \(kind == .object || kind == .array ? "an" : "a") \(kind)"
            case .invalidLiteral: "invalid literal"
            case .invalidNumber: "invalid number"
            case .numberOutOfRange: "number out of range"
            case .expectedKey: "expected a key"
            case .expectedColon: "expected ':'"
            case .unterminatedObject: "unterminated object"
            case .expectedCommaOrBrace: "expected ',' or '}'"
            case .unterminatedArray: "unterminated array"
            case .expectedCommaOrBracket: "expected ',' or ']'"
            case .trailingData: "unexpected data after the value"
            case .nestingTooDeep: "nesting too deep"
            case .unterminatedString: "unterminated string"
            case .unterminatedEscape: "unterminated escape"
            case .invalidEscape: "invalid escape"
            case .invalidUnicodeEscape: "invalid unicode escape"
            case .controlCharacter: "control character in string"
            case .invalidUTF8: "invalid UTF-8 in string"
            }
        }
    }
}
