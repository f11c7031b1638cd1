import Testing

@testable import Philote

/// Found by FuzzPublishRequest: JSONParser fed only raw bytes to its UTF-8 validator, so an escape between the bytes
/// of one character went unnoticed (`"\xE2\x82\n\xAC"` was accepted and decoded with U+FFFD in it), in token
/// headers and claims as in publish bodies.
@Suite struct JSONParserEscapeInCharacterTests {
    @Test func anEscapeInsideACharacterIsRefused() {
        let document = Array(#"{"data":""#.utf8) + [0xE2, 0x82] + Array(#"\n"#.utf8) + [0xAC] + Array(#""}"#.utf8)
        #expect(throws: JSONParser.Failure.self) { _ = try JSONParser.parse(document) }
    }

    @Test func anEscapeAfterAWholeCharacterIsRead() throws {
        let document = Array(#"{"data":"€\n€"}"#.utf8)
        #expect(try JSONParser.parse(document)["data"] == .string("€\n€"))
    }
}
