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
        var standard = ""
        standard.reserveCapacity(text.utf8.count + 2)
        for char in text.unicodeScalars {
            switch char {
            case "-": standard.append("+")
            case "_": standard.append("/")
            case "+", "/", "=": return nil
            default: standard.unicodeScalars.append(char)
            }
        }
        switch standard.utf8.count % 4 {
        case 0: break
        case 2: standard += "=="
        case 3: standard += "="
        default: return nil
        }
        return Base64.decode(standard)
    }
}
