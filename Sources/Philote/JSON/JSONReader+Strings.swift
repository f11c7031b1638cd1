/// Strings and keys: the project's one JSON string unescaper and its one check of their UTF-8.
///
/// A string is read as runs of raw bytes between escapes. Each run is checked with `UTF8Validator` on its
/// own and must end on a character boundary: an escape between the bytes of one character would otherwise
/// splice bytes of its own into it. (This is also exactly when the decoded string is valid UTF-8, because an
/// escape always decodes to whole characters.) What happens to a string that fails this check is the rules'
/// `invalidUTF8` choice.
extension JSONReader {
    /// The decoded string at the cursor.
    public mutating func readString() throws(Failure) -> String {
        try startValue(.string)
        return try scanString().string(in: bytes)
    }

    /// The decoded string at the cursor, as UTF-8 bytes.
    public mutating func readStringBytes() throws(Failure) -> [UInt8] {
        try startValue(.string)
        return try scanString().bytes(in: bytes)
    }

    /// Calls `body` with the decoded string at the cursor, as UTF-8 bytes that are valid only during the call:
    /// the input itself when the string has no escapes (nothing is copied), a temporary array otherwise.
    public mutating func withNextString<Result>(_ body: (UnsafeRawBufferPointer) -> Result) throws(Failure) -> Result {
        try startValue(.string)
        return try scanString().with(in: bytes, body)
    }

    /// The key of the next object member, decoded; the `:` after it is read too.
    public mutating func readKey() throws(Failure) -> String {
        try startKey()
        let key = try scanString().string(in: bytes)
        try endKey()
        return key
    }

    /// Calls `body` with the key of the next object member (see `withNextString`); the `:` after it is read too.
    public mutating func withNextKey<Result>(_ body: (UnsafeRawBufferPointer) -> Result) throws(Failure) -> Result {
        try startKey()
        let result = try scanString().with(in: bytes, body)
        try endKey()
        return result
    }

    /// Validates the key of the next object member and moves past it and its `:`.
    mutating func skipKey() throws(Failure) {
        try startKey()
        _ = try scanString()
        try endKey()
    }

    @inline(__always)
    private mutating func startKey() throws(Failure) {
        skipWhitespace()
        guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") else { throw failure(.expectedKey) }
    }

    @inline(__always)
    private mutating func endKey() throws(Failure) {
        skipWhitespace()
        guard index < bytes.count, bytes[index] == UInt8(ascii: ":") else { throw failure(.expectedColon) }
        index += 1
    }

    /// Reads the string whose opening quote is at the cursor, up to and including its closing quote.
    @inline(__always)
    mutating func scanString() throws(Failure) -> ScannedString {
        index += 1
        let start = index
        let (end, isASCII) = runEnd(from: start)
        // Most keys and values: ASCII without escapes, handed out in place.
        if isASCII && end < bytes.count && bytes[end] == UInt8(ascii: "\"") {
            index = end + 1
            return .inPlace(start..<end)
        }
        return try scanString(from: start, firstRunEnd: end, isFirstRunASCII: isASCII)
    }

    /// The rest of `scanString`, for a string with escapes, non-ASCII bytes or a fault: each run of raw bytes
    /// up to an escape is checked and copied, and each escape decoded.
    @inline(never)
    private mutating func scanString(from start: Int, firstRunEnd: Int, isFirstRunASCII: Bool) throws(Failure) -> ScannedString {
        var runStart = start
        var nextRun = (end: firstRunEnd, isASCII: isFirstRunASCII)
        // Allocated only at the first escape: a string without one is handed out in place.
        var decoded: [UInt8]? = nil
        var isValidUTF8 = true
        while true {
            let (end, isASCII) = nextRun
            var endsOnBoundary = true
            if !isASCII {
                let run = UnsafeRawBufferPointer(rebasing: bytes[runStart..<end])
                var utf8 = UTF8Validator()
                if !utf8.validate(run) {
                    guard rules.invalidUTF8 == .replace else {
                        throw failure(.invalidUTF8, at: runStart + Self.firstInvalidByte(in: run))
                    }
                    isValidUTF8 = false
                }
                endsOnBoundary = utf8.isComplete
            }
            guard end < bytes.count else { throw failure(.unterminatedString, at: bytes.count) }
            let terminator = bytes[end]
            if terminator < 0x20 { throw failure(.controlCharacter, at: end) }
            // Both a closing quote and an escape must come between characters, not inside one.
            if !endsOnBoundary {
                guard rules.invalidUTF8 == .replace else { throw failure(.invalidUTF8, at: end + 1) }
                isValidUTF8 = false
            }
            let run = UnsafeRawBufferPointer(rebasing: bytes[runStart..<end])
            if terminator == UInt8(ascii: "\"") {
                index = end + 1
                guard var decoded else {
                    return isValidUTF8 ? .inPlace(start..<end) : .decoded(Self.replacingInvalidUTF8(run))
                }
                decoded.append(contentsOf: run)
                return .decoded(isValidUTF8 ? decoded : decoded.withUnsafeBytes { Self.replacingInvalidUTF8($0) })
            }
            if decoded == nil {
                // Room for the rest of the input, which bounds the decoded string, up to a page: one allocation
                // for a typical escaped string instead of a few as the array grows.
                var storage: [UInt8] = []
                storage.reserveCapacity(min(bytes.count - start, 4096))
                decoded = storage
            }
            decoded!.append(contentsOf: run)
            runStart = try unescape(at: end + 1, into: &decoded!)
            nextRun = runEnd(from: runStart)
        }
    }

    /// Where the run of plain string bytes from `start` ends: at the first quote, backslash or control
    /// character, or at the end of the input; and whether the run is all ASCII (then it needs no UTF-8 check).
    @inline(__always)
    private func runEnd(from start: Int) -> (end: Int, isASCII: Bool) {
        let count = bytes.count
        var index = start
        var seen: UInt64 = 0
        // Eight bytes at a time while none of them ends the run: a long data string is mostly such words.
        // (x - 0x01…) & ~x & 0x80… is non-zero exactly when a byte of x is zero; with 0x20… it is when a byte is
        // below 0x20. In an all-ASCII word every byte of ~x has its top bit, so the `& ~x` can go.
        if let base = bytes.baseAddress {
            let ones: UInt64 = 0x0101_0101_0101_0101
            let tops: UInt64 = 0x8080_8080_8080_8080
            while index + 8 <= count {
                let word = base.loadUnaligned(fromByteOffset: index, as: UInt64.self)
                let quotes = word ^ 0x2222_2222_2222_2222
                let backslashes = word ^ 0x5C5C_5C5C_5C5C_5C5C
                let below = word &- 0x2020_2020_2020_2020
                let special: UInt64
                if word & tops == 0 {
                    special = (quotes &- ones) | (backslashes &- ones) | below
                } else {
                    special = ((quotes &- ones) & ~quotes) | ((backslashes &- ones) & ~backslashes) | (below & ~word)
                }
                if special & tops != 0 { break }
                seen |= word
                index += 8
            }
        }
        while index < count {
            let byte = bytes[index]
            if byte == 0x22 || byte == 0x5C || byte < 0x20 { break }
            seen |= UInt64(byte)
            index += 1
        }
        return (index, seen & 0x8080_8080_8080_8080 == 0)
    }

    /// Decodes the escape whose letter is at `index` (just after the backslash) into `out`; returns the
    /// offset after the escape.
    private func unescape(at index: Int, into out: inout [UInt8]) throws(Failure) -> Int {
        guard index < bytes.count else { throw failure(.unterminatedEscape, at: bytes.count) }
        let letter = bytes[index]
        switch letter {
        case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): out.append(letter)
        case UInt8(ascii: "b"): out.append(0x08)
        case UInt8(ascii: "f"): out.append(0x0C)
        case UInt8(ascii: "n"): out.append(0x0A)
        case UInt8(ascii: "r"): out.append(0x0D)
        case UInt8(ascii: "t"): out.append(0x09)
        case UInt8(ascii: "u"):
            guard let (scalar, used) = JSONUnicodeEscape.decode(bytes, at: index + 1) else {
                throw failure(.invalidUnicodeEscape, at: index + 1)
            }
            Self.appendUTF8(scalar, to: &out)
            return index + 1 + used
        default: throw failure(.invalidEscape, at: index + 1)
        }
        return index + 1
    }

    private static func appendUTF8(_ scalar: Unicode.Scalar, to out: inout [UInt8]) {
        let value = scalar.value
        switch value {
        case 0..<0x80:
            out.append(UInt8(value))
        case 0x80..<0x800:
            out.append(0xC0 | UInt8(value >> 6))
            out.append(0x80 | UInt8(value & 0x3F))
        case 0x800..<0x10000:
            out.append(0xE0 | UInt8(value >> 12))
            out.append(0x80 | UInt8(value >> 6 & 0x3F))
            out.append(0x80 | UInt8(value & 0x3F))
        default:
            out.append(0xF0 | UInt8(value >> 18))
            out.append(0x80 | UInt8(value >> 12 & 0x3F))
            out.append(0x80 | UInt8(value >> 6 & 0x3F))
            out.append(0x80 | UInt8(value & 0x3F))
        }
    }

    /// The offset in `run` of the byte at which UTF-8 validation fails (the run is known to fail). Only a
    /// refusal pays for this second pass.
    private static func firstInvalidByte(in run: UnsafeRawBufferPointer) -> Int {
        var utf8 = UTF8Validator()
        for offset in run.indices where !utf8.validate(UnsafeRawBufferPointer(rebasing: run[offset..<(offset + 1)])) {
            return offset
        }
        return run.count
    }

    /// Each maximal invalid subsequence replaced with U+FFFD, as Go's decoder (and `String(decoding:)`) does.
    private static func replacingInvalidUTF8(_ bytes: UnsafeRawBufferPointer) -> [UInt8] {
        Array(String(decoding: bytes, as: UTF8.self).utf8)
    }
}
