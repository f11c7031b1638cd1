/// One element of a `Sec-WebSocket-Extensions` list (RFC 6455 section 9.1): a name and its parameters in
/// order, quoted values already unquoted.
public struct ExtensionOffer: Equatable, Sendable {
    public var name: String
    public var parameters: [(name: String, value: String?)]

    public static func == (lhs: ExtensionOffer, rhs: ExtensionOffer) -> Bool {
        lhs.name == rhs.name && lhs.parameters.elementsEqual(rhs.parameters, by: { $0 == $1 })
    }

    /// Every offer in every header value, in order. A malformed element is returned as nil in its place,
    /// so that one bad offer is declined without hiding the ones after it.
    public static func parse(_ values: [String]) -> [ExtensionOffer?] {
        var offers: [ExtensionOffer?] = []
        for value in values {
            for element in split(Substring(value), on: ",") {
                let trimmed = element.trimmingHTTPWhitespace()
                if trimmed.isEmpty { continue }  // empty list elements are allowed by the list syntax
                offers.append(parseElement(trimmed))
            }
        }
        return offers
    }

    private static func parseElement(_ element: Substring) -> ExtensionOffer? {
        let parts = split(element, on: ";").map { $0.trimmingHTTPWhitespace() }
        guard let name = parts.first, isToken(name) else { return nil }
        var parameters: [(name: String, value: String?)] = []
        for part in parts.dropFirst() {
            let pieces = part.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let key = pieces[0].trimmingHTTPWhitespace()
            guard isToken(key) else { return nil }
            if pieces.count == 1 {
                parameters.append((String(key), nil))
                continue
            }
            let raw = pieces[1].trimmingHTTPWhitespace()
            if raw.first == "\"" {
                guard let unquoted = unquote(raw), isToken(Substring(unquoted)) else { return nil }
                parameters.append((String(key), unquoted))
            } else {
                guard isToken(raw) else { return nil }
                parameters.append((String(key), String(raw)))
            }
        }
        return ExtensionOffer(name: String(name), parameters: parameters)
    }

    /// Splits on `separator` outside quoted strings.
    private static func split(_ text: Substring, on separator: Character) -> [Substring] {
        var pieces: [Substring] = []
        var start = text.startIndex
        var index = text.startIndex
        var quoted = false
        var escaped = false
        while index < text.endIndex {
            let char = text[index]
            if escaped {
                escaped = false
            } else if quoted && char == "\\" {
                escaped = true
            } else if char == "\"" {
                quoted.toggle()
            } else if !quoted && char == separator {
                pieces.append(text[start..<index])
                start = text.index(after: index)
            }
            index = text.index(after: index)
        }
        pieces.append(text[start...])
        return pieces
    }

    /// A quoted-string's content (RFC 9110 section 5.6.4), or nil if it is not exactly one quoted string.
    private static func unquote(_ text: Substring) -> String? {
        guard text.count >= 2, text.first == "\"", text.last == "\"" else { return nil }
        var out = ""
        var escaped = false
        for char in text.dropFirst().dropLast() {
            if escaped {
                out.append(char)
                escaped = false
            } else if char == "\\" {
                escaped = true
            } else if char == "\"" {
                return nil
            } else {
                out.append(char)
            }
        }
        return escaped ? nil : out
    }

    private static func isToken(_ text: Substring) -> Bool {
        !text.isEmpty && text.utf8.allSatisfy(HTTPToken.isTokenByte)
    }
}
