/// base64url without padding (RFC 7515 section 2), as JWT segments use it.
public enum Base64URL {
    public static func encode(_ bytes: some Collection<UInt8>) -> String {
        let standard = Array(bytes).withUnsafeBytes { Base64.encode($0) }
        var out = ""
        out.reserveCapacity(standard.utf8.count)
        for char in standard.unicodeScalars {
            switch char {
            case "+": out.append("-")
            case "/": out.append("_")
            case "=": continue
            default: out.unicodeScalars.append(char)
            }
        }
        return out
    }

    /// Strict: the URL alphabet only, no padding, no impossible lengths, canonical trailing bits.
    public static func decode(_ text: some StringProtocol) -> [UInt8]? {
        Array(text.utf8).withUnsafeBytes { decode($0) }
    }

    /// As `decode(_:)`, over the bytes of a token segment.
    static func decode(_ text: UnsafeRawBufferPointer) -> [UInt8]? {
        guard let count = decodedCount(text.count) else { return nil }
        // An empty segment: `unsafeUninitializedCapacity: 0` would write its count of 0 into the storage that all
        // empty arrays share, a write ThreadSanitizer reports as a race between loops.
        if count == 0 { return [] }
        var valid = true
        let bytes = [UInt8](unsafeUninitializedCapacity: count) { buffer, initialized in
            valid = decode(text, into: buffer.baseAddress!)
            initialized = valid ? count : 0
        }
        return valid ? bytes : nil
    }

    /// The number of bytes `length` characters decode to; nil for a length no encoding has (4n + 1).
    static func decodedCount(_ length: Int) -> Int? {
        switch length % 4 {
        case 0: length / 4 * 3
        case 2: length / 4 * 3 + 1
        case 3: length / 4 * 3 + 2
        default: nil
        }
    }

    /// Decodes `text` into `out`, which holds `decodedCount(text.count)` bytes; false for a character
    /// outside the URL alphabet, an impossible length or non-zero bits after the last byte.
    static func decode(_ text: UnsafeRawBufferPointer, into out: UnsafeMutablePointer<UInt8>) -> Bool {
        guard decodedCount(text.count) != nil else { return false }
        return sextets.withUnsafeBufferPointer { sextets in
            var input = 0
            var output = 0
            // Invalid characters map to 0xFF, so one test of the top bits of all four values catches any.
            while input + 4 <= text.count {
                let a = sextets[Int(text[input])]
                let b = sextets[Int(text[input + 1])]
                let c = sextets[Int(text[input + 2])]
                let d = sextets[Int(text[input + 3])]
                guard (a | b | c | d) & 0xC0 == 0 else { return false }
                let group = UInt32(a) << 18 | UInt32(b) << 12 | UInt32(c) << 6 | UInt32(d)
                out[output] = UInt8(truncatingIfNeeded: group >> 16)
                out[output + 1] = UInt8(truncatingIfNeeded: group >> 8)
                out[output + 2] = UInt8(truncatingIfNeeded: group)
                input += 4
                output += 3
            }
            switch text.count - input {
            case 2:
                let a = sextets[Int(text[input])]
                let b = sextets[Int(text[input + 1])]
                // The low 4 bits of the second character encode no byte: canonical means zero.
                guard (a | b) & 0xC0 == 0, b & 0x0F == 0 else { return false }
                out[output] = a << 2 | b >> 4
            case 3:
                let a = sextets[Int(text[input])]
                let b = sextets[Int(text[input + 1])]
                let c = sextets[Int(text[input + 2])]
                guard (a | b | c) & 0xC0 == 0, c & 0x03 == 0 else { return false }
                out[output] = a << 2 | b >> 4
                out[output + 1] = b << 4 | c >> 2
            default: break
            }
            return true
        }
    }

    /// Each byte's 6-bit value in the URL alphabet, 0xFF for bytes outside it.
    private static let sextets: [UInt8] = {
        var table = [UInt8](repeating: 0xFF, count: 256)
        for (value, char) in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8.enumerated() {
            table[Int(char)] = UInt8(value)
        }
        return table
    }()
}
