import Testing

@testable import Philote

@Suite struct JSONParserTests {
    func parse(_ text: String) throws -> JSONValue { try JSONParser.parse(Array(text.utf8)) }

    @Test func parsesEveryKind() throws {
        let value = try parse(#" {"a": [1, -2.5e3, true, false, null], "b": "x\u00e9\ud83d\ude00\n", "a": {}} "#)
        #expect(value["a"] == .object([]))  // the last duplicate wins
        #expect(value["b"] == .string("xé😀\n"))
        guard case .object(let members) = value else { Issue.record("not an object"); return }
        #expect(members.count == 3)
        #expect(members[0].value == .array([.number(1, isInteger: true), .number(-2500, isInteger: false), .bool(true), .bool(false), .null]))
    }

    @Test(arguments: [
        "", "{", "[1,]", "{\"a\":1,}", "01", "1.", "-", "+1", "\"\\x\"", "\"a", "tru", "nul", "{a:1}", "[1] x",
        "\"\u{01}\"", "1e", "{\"a\" 1}", "//", "NaN",
    ])
    func refusesMalformedDocuments(_ text: String) {
        #expect(throws: JSONParser.Failure.self) { try parse(text) }
    }

    @Test func refusesDeepNesting() throws {
        #expect(throws: JSONParser.Failure.self) { try parse(String(repeating: "[", count: 100) + String(repeating: "]", count: 100)) }
        _ = try parse(String(repeating: "[", count: 10) + String(repeating: "]", count: 10))
    }

    @Test func refusesInvalidUTF8AndReplacesLoneSurrogates() throws {
        #expect(throws: JSONParser.Failure.self) { try JSONParser.parse([0x22, 0xC0, 0x80, 0x22]) }
        #expect(try parse(#""\ud800x""#) == .string("\u{FFFD}x"))
    }
}
