/// Finds the token in an upgrade or API request, as the original did: the `Authorization` header
/// first (a leading case-sensitive `Bearer` stripped, whitespace trimmed), and only when that yields
/// nothing, the `auth` query parameter. A bad header never falls back to the query.
public enum TokenLocator {
    public static func token(in head: RequestHead) -> String? {
        if let header = head.values("Authorization").first {
            var value = Substring(header)
            if value.hasPrefix("Bearer") { value = value.dropFirst(6) }
            let trimmed = value.trimmingHTTPWhitespace()
            if !trimmed.isEmpty { return String(trimmed) }
        }
        // Browsers send their token here on every upgrade. Splitting characters cost more than verifying the
        // token; in ASCII, which is all the request parser admits, every byte is a character, so the bytes
        // are split instead, by the same rules.
        var target = head.target
        return target.withUTF8 { target in
            guard target.allSatisfy({ $0 < 0x80 }) else { return characterQueryToken(head.target) }
            guard let query = target.split(separator: UInt8(ascii: "?"), maxSplits: 1).dropFirst().first else {
                return nil
            }
            for pair in query.split(separator: UInt8(ascii: "&")) {
                let parts = pair.split(separator: UInt8(ascii: "="), maxSplits: 1, omittingEmptySubsequences: false)
                guard let name = percentDecode(parts[0]), name == "auth" else { continue }
                guard parts.count == 2, let value = percentDecode(parts[1]), !value.isEmpty else { return nil }
                return value
            }
            return nil
        }
    }

    /// The same search over characters, for a target that is not ASCII (made by hand, not parsed), where a
    /// mark next to a separator can join it into another character.
    private static func characterQueryToken(_ target: String) -> String? {
        guard let query = target.split(separator: "?", maxSplits: 1).dropFirst().first else { return nil }
        for pair in query.split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard let name = percentDecode(parts[0].utf8), name == "auth" else { continue }
            guard parts.count == 2, let value = percentDecode(parts[1].utf8), !value.isEmpty else { return nil }
            return value
        }
        return nil
    }

    /// URL query decoding: `%XX` and `+` as space; nil for a broken escape or non-UTF-8 result.
    static func percentDecode(_ text: some Collection<UInt8>) -> String? {
        // Plain ASCII, as tokens are, is valid UTF-8 as it stands.
        if text.allSatisfy({ $0 < 0x80 && $0 != UInt8(ascii: "+") && $0 != UInt8(ascii: "%") }) {
            return String(decoding: text, as: UTF8.self)
        }
        var out: [UInt8] = []
        out.reserveCapacity(text.count)
        var bytes = text.makeIterator()
        while let byte = bytes.next() {
            switch byte {
            case UInt8(ascii: "+"): out.append(0x20)
            case UInt8(ascii: "%"):
                guard let high = bytes.next().flatMap(hexValue), let low = bytes.next().flatMap(hexValue) else {
                    return nil
                }
                out.append(high << 4 | low)
            default: out.append(byte)
            }
        }
        return String(validating: out, as: UTF8.self)
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - 0x30
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - 0x61 + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - 0x41 + 10
        default: nil
        }
    }
}
