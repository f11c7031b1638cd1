import CSystem

/// Standard base64 (RFC 4648 section 4) for the handshake.
enum Base64 {
    static func encode(_ bytes: UnsafeRawBufferPointer) -> String {
        let capacity = 4 * ((bytes.count + 2) / 3) + 1
        return String(unsafeUninitializedCapacity: capacity) { out in
            let written = out.withMemoryRebound(to: CChar.self) { chars in
                CSystem_base64_encode(
                    bytes.baseAddress?.assumingMemoryBound(to: UInt8.self), bytes.count, chars.baseAddress)
            }
            return max(0, Int(written))
        }
    }

    /// Strict decoding: canonical padding and alphabet only; nil for anything else.
    static func decode(_ text: some StringProtocol) -> [UInt8]? {
        let input = Array(text.utf8)
        guard input.count % 4 == 0 else { return nil }
        var output: [UInt8] = []
        output.reserveCapacity(input.count / 4 * 3)
        var index = 0
        while index < input.count {
            var quad: UInt32 = 0
            var padding = 0
            for offset in 0..<4 {
                let char = input[index + offset]
                let value: UInt32
                switch char {
                case UInt8(ascii: "A")...UInt8(ascii: "Z"): value = UInt32(char - UInt8(ascii: "A"))
                case UInt8(ascii: "a")...UInt8(ascii: "z"): value = UInt32(char - UInt8(ascii: "a") + 26)
                case UInt8(ascii: "0")...UInt8(ascii: "9"): value = UInt32(char - UInt8(ascii: "0") + 52)
                case UInt8(ascii: "+"): value = 62
                case UInt8(ascii: "/"): value = 63
                case UInt8(ascii: "="):
                    // Padding only in the last quad's last two places, and nothing after it.
                    guard index + 4 == input.count, offset >= 2 else { return nil }
                    padding += 1
                    value = 0
                default: return nil
                }
                if padding > 0 && char != UInt8(ascii: "=") { return nil }
                quad = quad << 6 | value
            }
            output.append(UInt8(truncatingIfNeeded: quad >> 16))
            if padding < 2 { output.append(UInt8(truncatingIfNeeded: quad >> 8)) }
            if padding < 1 { output.append(UInt8(truncatingIfNeeded: quad)) }
            // Non-canonical: bits under the padding must be zero.
            if padding == 1 && quad & 0xFF != 0 { return nil }
            if padding == 2 && quad & 0xFFFF != 0 { return nil }
            index += 4
        }
        return output
    }
}
