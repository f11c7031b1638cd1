/// Encodes JSON strings the way Go's encoding/json does, which the original server's clients see:
/// `<`, `>`, `&`, U+2028 and U+2029 as `\u` escapes, `\n` `\r` `\t` `\"` `\\` short, other control
/// characters as `\u00XX`, everything else (non-ASCII included) as UTF-8.
public enum JSONStringEncoder {
    public static func quoted(_ text: String) -> String {
        var out: [UInt8] = [0x22]
        var text = text
        text.withUTF8 { append(UnsafeRawBufferPointer($0), to: &out) }
        out.append(0x22)
        return String(decoding: out, as: UTF8.self)
    }

    private static let hex: [UInt8] = Array("0123456789abcdef".utf8)

    /// Appends the escaped body (no quotes) of valid UTF-8 `bytes`.
    public static func append(_ bytes: UnsafeRawBufferPointer, to out: inout [UInt8]) {
        var index = 0
        let count = bytes.count
        while index < count {
            let byte = bytes[index]
            index += 1
            switch byte {
            case 0x22: out.append(contentsOf: [0x5C, 0x22])
            case 0x5C: out.append(contentsOf: [0x5C, 0x5C])
            case 0x0A: out.append(contentsOf: [0x5C, UInt8(ascii: "n")])
            case 0x0D: out.append(contentsOf: [0x5C, UInt8(ascii: "r")])
            case 0x09: out.append(contentsOf: [0x5C, UInt8(ascii: "t")])
            case 0x00..<0x20, UInt8(ascii: "<"), UInt8(ascii: ">"), UInt8(ascii: "&"):
                out.append(contentsOf: [0x5C, UInt8(ascii: "u"), 0x30, 0x30, hex[Int(byte >> 4)], hex[Int(byte & 0xF)]])
            case 0xE2 where index + 1 < count && bytes[index] == 0x80 && (bytes[index + 1] | 1) == 0xA9:
                // U+2028 and U+2029 (E2 80 A8/A9) are valid JSON but line breaks in JavaScript.
                out.append(contentsOf: [
                    0x5C, UInt8(ascii: "u"), 0x32, 0x30, 0x32, bytes[index + 1] == 0xA8 ? 0x38 : 0x39,
                ])
                index += 2
            default: out.append(byte)
            }
        }
    }
}
