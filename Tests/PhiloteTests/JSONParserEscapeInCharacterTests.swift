import Testing

@testable import Philote

/// A known bug, found by FuzzPublishRequest, kept here until it is fixed where it lives: JSONParser.parseString
/// feeds only raw bytes to its UTF-8 validator, so an escape between the bytes of one character goes unnoticed
/// (`"\xE2\x82\n\xAC"` is accepted and decoded with U+FFFD in it). PublishRequestReader checks the whole body
/// itself; token headers and claims still go through the parser alone. When the parser is fixed this test
/// fails ("known issue was not recorded"): drop the withKnownIssue then.
@Suite struct JSONParserEscapeInCharacterTests {
    @Test func anEscapeInsideACharacterIsRefused() {
        let document = Array(#"{"data":""#.utf8) + [0xE2, 0x82] + Array(#"\n"#.utf8) + [0xAC] + Array(#""}"#.utf8)
        withKnownIssue("JSONParser does not check that an escape starts on a character boundary") {
            #expect(throws: JSONParser.Failure.self) { _ = try JSONParser.parse(document) }
        }
    }
}
