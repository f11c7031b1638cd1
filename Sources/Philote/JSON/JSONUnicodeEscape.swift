/// Decoding of JSON's `\uXXXX` escapes, for `JSONReader`'s string unescaper (its only caller).
enum JSONUnicodeEscape {
    /// Decodes the escape whose four hex digits start at `index` (just after `\u`), joining a following
    /// `\uXXXX` low surrogate. A lone surrogate becomes U+FFFD, as Go's decoder does. Returns the scalar
    /// and the bytes used, or nil for bad hex digits.
    static func decode(_ bytes: some RandomAccessCollection<UInt8>, at index: Int) -> (Unicode.Scalar, Int)? {
        guard let first = hex4(bytes, at: index) else { return nil }
        if (0xD800...0xDBFF).contains(first) {
            let next = index + 4
            if next + 6 <= bytes.count, byte(bytes, next) == UInt8(ascii: "\\"),
                byte(bytes, next + 1) == UInt8(ascii: "u"),
                let second = hex4(bytes, at: next + 2), (0xDC00...0xDFFF).contains(second)
            {
                return (Unicode.Scalar(0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00))!, 10)
            }
            return ("\u{FFFD}", 4)
        }
        if (0xDC00...0xDFFF).contains(first) { return ("\u{FFFD}", 4) }
        return (Unicode.Scalar(first)!, 4)
    }

    private static func byte(_ bytes: some RandomAccessCollection<UInt8>, _ offset: Int) -> UInt8 {
        bytes[bytes.index(bytes.startIndex, offsetBy: offset)]
    }

    private static func hex4(_ bytes: some RandomAccessCollection<UInt8>, at index: Int) -> UInt32? {
        guard index + 4 <= bytes.count else { return nil }
        var value: UInt32 = 0
        for offset in index..<(index + 4) {
            let char = byte(bytes, offset)
            let digit: UInt32
            switch char {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = UInt32(char - 0x30)
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = UInt32(char - 0x61 + 10)
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = UInt32(char - 0x41 + 10)
            default: return nil
            }
            value = value << 4 | digit
        }
        return value
    }
}
