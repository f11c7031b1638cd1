extension JSONReader {
    /// What the reader accepts where the project's two historical JSON readers differed. Each is part of a
    /// contract that tests pin: `strict` is what token headers and claims and `POST /api/publish` bodies have
    /// always been held to, and `ClientMessageReader.rules` is the WebSocket client-message contract
    /// (PROTOCOL.md).
    public struct Rules: Sendable {
        /// How nesting is counted against `maxDepth`.
        public enum Nesting: Sendable, Equatable {
            /// No more than `maxDepth` objects and arrays may be open at once; the container that would be one
            /// too many fails at its bracket.
            case containers
            /// No value (container or not) may be inside more than `maxDepth` containers; checked before the
            /// value's first byte is looked at.
            case everyValue
        }

        /// What becomes of a string that is not valid UTF-8 (a raw byte that cannot be UTF-8, or an escape
        /// inside the bytes of one character).
        public enum InvalidUTF8: Sendable, Equatable {
            /// The string fails the read (`Failure.Kind.invalidUTF8`).
            case refuse
            /// Each invalid sequence becomes U+FFFD, as Go's decoder does: a binary WebSocket frame may carry
            /// anything, and the original server accepted it so.
            case replace
        }

        public var maxDepth: Int
        public var nesting: Nesting
        public var invalidUTF8: InvalidUTF8
        /// Whether `skipValue` also refuses numbers that are no finite `Double` (`1e999`), as reading them does.
        public var skippedNumbersMustBeFinite: Bool

        public init(maxDepth: Int, nesting: Nesting, invalidUTF8: InvalidUTF8, skippedNumbersMustBeFinite: Bool) {
            self.maxDepth = maxDepth
            self.nesting = nesting
            self.invalidUTF8 = invalidUTF8
            self.skippedNumbersMustBeFinite = skippedNumbersMustBeFinite
        }

        /// RFC 8259 to the letter, for documents read whole: invalid UTF-8 and numbers out of range are
        /// refused wherever they are, and at most `maxDepth` containers may be open at once.
        public static func strict(maxDepth: Int = 32) -> Rules {
            Rules(maxDepth: maxDepth, nesting: .containers, invalidUTF8: .refuse, skippedNumbersMustBeFinite: true)
        }
    }
}
