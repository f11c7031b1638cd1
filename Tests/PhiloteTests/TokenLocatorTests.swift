import Testing

@testable import Philote

private func head(target: String, headers: [(name: String, value: String)] = []) -> RequestHead {
    RequestHead(method: "GET", target: target, versionMajor: 1, versionMinor: 1, headers: headers)
}

/// The locator's rules read over characters, as it applied them to every target before the query was
/// split as bytes: the randomized test below holds the two to the same answers.
private func plainQueryToken(_ target: String) -> String? {
    func decode(_ text: Substring) -> String? {
        var out: [UInt8] = []
        var bytes = text.utf8.makeIterator()
        while let byte = bytes.next() {
            switch byte {
            case UInt8(ascii: "+"): out.append(0x20)
            case UInt8(ascii: "%"):
                guard let high = bytes.next().flatMap({ UInt8(String(UnicodeScalar($0)), radix: 16) }),
                    let low = bytes.next().flatMap({ UInt8(String(UnicodeScalar($0)), radix: 16) })
                else { return nil }
                out.append(high << 4 | low)
            default: out.append(byte)
            }
        }
        return String(validating: out, as: UTF8.self)
    }
    guard let query = target.split(separator: "?", maxSplits: 1).dropFirst().first else { return nil }
    for pair in query.split(separator: "&") {
        let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
        guard let name = decode(parts[0]), name == "auth" else { continue }
        guard parts.count == 2, let value = decode(parts[1]), !value.isEmpty else { return nil }
        return value
    }
    return nil
}

@Suite struct TokenLocatorTests {
    @Test func prefersTheAuthorizationHeader() {
        let query = "/?auth=from-query"
        #expect(TokenLocator.token(in: head(target: query, headers: [("Authorization", "Bearer abc")])) == "abc")
        #expect(TokenLocator.token(in: head(target: query, headers: [("authorization", " \tabc \t")])) == "abc")
        #expect(TokenLocator.token(in: head(target: query, headers: [("Authorization", "Bearerabc")])) == "abc")
        #expect(TokenLocator.token(in: head(target: query, headers: [("Authorization", "bearer abc")])) == "bearer abc")
        // An empty header (or a bare "Bearer") falls back to the query.
        #expect(TokenLocator.token(in: head(target: query, headers: [("Authorization", "Bearer ")])) == "from-query")
        #expect(TokenLocator.token(in: head(target: query)) == "from-query")
    }

    @Test func readsTheAuthQueryParameter() {
        let cases: [(String, String?)] = [
            ("/", nil), ("/?", nil), ("/?auth", nil), ("/?auth=", nil), ("/?x=1&auth=a.b.c&y=2", "a.b.c"),
            ("/?auth=a&auth=b", "a"), ("/?&&auth=a", "a"), ("/?a%75th=x", "x"), ("/?auth=a%2Eb+c", "a.b c"),
            ("/?auth=%zz", nil), ("/?auth=%C3", nil), ("/?auth=%C3%A9", "é"), ("/?auth=a=b", "a=b"),
            ("?auth=x", nil), ("/?a?auth=x", nil), ("?a?auth=x", "x"), ("/??auth=x", nil), ("/?auth%=x&auth=y", "y"),
        ]
        for (target, token) in cases {
            #expect(TokenLocator.token(in: head(target: target)) == token, "\(target)")
        }
    }

    @Test func agreesWithTheCharacterRulesOnRandomTargets() {
        // Separators, escapes and characters that join a neighbouring separator into one character: a
        // combining accent after it, an Arabic number sign (a prepended mark) before it.
        let pieces = ["?", "&", "=", "auth", "a", "%", "2", "e", "+", "/", ".", "é", "\u{301}", "\u{600}", "\r\n"]
        var random = SeededGenerator(seed: 7)
        for _ in 0..<20_000 {
            let count = Int.random(in: 0...12, using: &random)
            let target = (0..<count).map { _ in pieces.randomElement(using: &random)! }.joined()
            #expect(
                TokenLocator.token(in: head(target: target)) == plainQueryToken(target), "\(target.debugDescription)")
        }
    }
}
