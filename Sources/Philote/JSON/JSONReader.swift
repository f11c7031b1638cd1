/// A pull reader of JSON (RFC 8259) over bytes, and the project's only JSON tokenizer: client messages,
/// `POST /api/publish` bodies, token headers and claims and the `JSONValue` tree are all read through it, so
/// that string unescaping, UTF-8 checks, number syntax and nesting limits are written once.
///
/// The caller walks the document one token at a time and decides at each value what it wants: read it,
/// or skip it (skipping still validates). Nothing is allocated but what a read returns, and a string without
/// escapes can be looked at in place (`withNextString`, `withNextKey`).
///
///     var reader = JSONReader(bytes, rules: .strict())
///     if try reader.beginObject() {
///         repeat {
///             switch try reader.readKey() {
///             case "name": name = try reader.readString()
///             default: try reader.skipValue()
///             }
///         } while try reader.nextMember()
///     }
///     try reader.finish()
///
/// Every call skips the whitespace before its token. A failure says what was wrong and at which byte offset
/// (`Failure`); the reader is not meant to be used after one. How strict the reader is about what the two
/// historical readers disagreed on (invalid UTF-8 in strings, the range of skipped numbers, how nesting is
/// counted) is set by its `Rules`.
///
/// `bytes` must stay valid for as long as the reader is used (it is read in place, never copied).
public struct JSONReader {
    public let bytes: UnsafeRawBufferPointer
    public let rules: Rules
    var index = 0
    /// How many objects and arrays are open at the cursor.
    public private(set) var depth = 0

    public init(_ bytes: UnsafeRawBufferPointer, rules: Rules) {
        self.bytes = bytes
        self.rules = rules
    }

    /// The byte offset of the cursor: the next byte not yet read.
    public var offset: Int { index }

    /// The kinds of JSON value, as told by a value's first byte.
    public enum ValueKind: Sendable, Equatable {
        case object, array, string, number, bool, null
    }

    // MARK: Values

    /// The kind of the value at the cursor, judged by its first byte after whitespace (`"nul"` is a `.null`
    /// that fails to read); nil at the end of the input or at a byte that starts no value. Reads only whitespace.
    public mutating func peekValueKind() -> ValueKind? {
        skipWhitespace()
        guard index < bytes.count else { return nil }
        switch bytes[index] {
        case UInt8(ascii: "{"): return .object
        case UInt8(ascii: "["): return .array
        case UInt8(ascii: "\""): return .string
        case UInt8(ascii: "t"), UInt8(ascii: "f"): return .bool
        case UInt8(ascii: "n"): return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return .number
        default: return nil
        }
    }

    /// Like `peekValueKind`, but a value must start here: fails at the end of the input, at a byte that
    /// starts no value, or where the nesting rule allows no value.
    public mutating func expectValue() throws(Failure) -> ValueKind {
        try startValue()
        guard let kind = peekValueKind() else {
            throw failure(index < bytes.count ? .unexpectedCharacter : .unexpectedEnd)
        }
        return kind
    }

    /// Validates the value at the cursor, whatever it is, and moves past it.
    public mutating func skipValue() throws(Failure) {
        switch try expectValue() {
        case .object:
            guard try openContainer(UInt8(ascii: "{"), closedBy: UInt8(ascii: "}")) else { return }
            repeat {
                try skipKey()
                try skipValue()
            } while try nextMember()
        case .array:
            guard try openContainer(UInt8(ascii: "["), closedBy: UInt8(ascii: "]")) else { return }
            repeat {
                try skipValue()
            } while try nextElement()
        case .string: _ = try scanString()
        case .number: try skipNumber()
        case .bool: _ = try readBool()
        case .null: try readNull()
        }
    }

    public mutating func readBool() throws(Failure) -> Bool {
        try startValue(.bool)
        if bytes[index] == UInt8(ascii: "t") {
            try literal("true")
            return true
        }
        try literal("false")
        return false
    }

    public mutating func readNull() throws(Failure) {
        try startValue(.null)
        try literal("null")
    }

    /// Fails unless only whitespace follows: call it after the document's one top-level value.
    public mutating func finish() throws(Failure) {
        skipWhitespace()
        guard index == bytes.count else { throw failure(.trailingData) }
    }

    // MARK: Objects and arrays

    /// Moves past the `{` of an object; true when a member follows (read its key with `readKey` or
    /// `withNextKey`, then its value), false when the object is empty (its `}` is read too).
    public mutating func beginObject() throws(Failure) -> Bool {
        try startValue(.object)
        return try openContainer(UInt8(ascii: "{"), closedBy: UInt8(ascii: "}"))
    }

    /// After a member's value: true when another member follows (its `,` is read), false at the end of the
    /// object (its `}` is read).
    public mutating func nextMember() throws(Failure) -> Bool {
        try next(closedBy: UInt8(ascii: "}"), unterminated: .unterminatedObject, unexpected: .expectedCommaOrBrace)
    }

    /// Moves past the `[` of an array; true when an element follows, false when the array is empty (its `]` is
    /// read too).
    public mutating func beginArray() throws(Failure) -> Bool {
        try startValue(.array)
        return try openContainer(UInt8(ascii: "["), closedBy: UInt8(ascii: "]"))
    }

    /// After an element: true when another element follows (its `,` is read), false at the end of the array
    /// (its `]` is read).
    public mutating func nextElement() throws(Failure) -> Bool {
        try next(closedBy: UInt8(ascii: "]"), unterminated: .unterminatedArray, unexpected: .expectedCommaOrBracket)
    }

    // MARK: Internals shared by the extensions

    @inline(__always)
    mutating func skipWhitespace() {
        while index < bytes.count {
            switch bytes[index] {
            case 0x20, 0x09, 0x0A, 0x0D: index += 1
            default: return
            }
        }
    }

    func failure(_ kind: Failure.Kind, at offset: Int? = nil) -> Failure {
        Failure(kind: kind, offset: offset ?? index)
    }

    /// Skips whitespace before a value and applies the `.everyValue` nesting rule, which is checked before
    /// the value's first byte is even looked at (as the client-message reader always did).
    @inline(__always)
    mutating func startValue() throws(Failure) {
        skipWhitespace()
        if rules.nesting == .everyValue && depth > rules.maxDepth { throw failure(.nestingTooDeep) }
    }

    /// `startValue`, then the value must be of `kind`; leaves the cursor on its first byte.
    @inline(__always)
    mutating func startValue(_ kind: ValueKind) throws(Failure) {
        try startValue()
        guard index < bytes.count else { throw failure(.unexpectedEnd) }
        guard peekValueKind() == kind else { throw failure(.expected(kind)) }
    }

    /// On `open` (already checked): applies the `.containers` nesting rule, then reads it and the whitespace
    /// after it; false, with the container closed again, when `close` follows at once.
    @inline(__always)
    private mutating func openContainer(_ open: UInt8, closedBy close: UInt8) throws(Failure) -> Bool {
        if rules.nesting == .containers && depth >= rules.maxDepth { throw failure(.nestingTooDeep) }
        index += 1
        depth += 1
        skipWhitespace()
        if index < bytes.count && bytes[index] == close {
            index += 1
            depth -= 1
            return false
        }
        return true
    }

    @inline(__always)
    private mutating func next(
        closedBy close: UInt8, unterminated: Failure.Kind, unexpected: Failure.Kind
    ) throws(Failure) -> Bool {
        skipWhitespace()
        guard index < bytes.count else { throw failure(unterminated) }
        let byte = bytes[index]
        if byte == UInt8(ascii: ",") {
            index += 1
            return true
        }
        guard byte == close else { throw failure(unexpected) }
        index += 1
        depth -= 1
        return false
    }

    /// Matches `text` byte by byte, failing at the first byte that differs (or at the end of the input).
    private mutating func literal(_ text: StaticString) throws(Failure) {
        let expected = UnsafeRawBufferPointer(start: text.utf8Start, count: text.utf8CodeUnitCount)
        for byte in expected {
            guard index < bytes.count, bytes[index] == byte else { throw failure(.invalidLiteral) }
            index += 1
        }
    }
}
