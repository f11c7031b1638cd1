import Testing

@testable import Philote

private func read(_ text: String) -> Result<[ClientMessage], ClientMessageReader.Failure> {
    PublishRequestReader.read(Array(text.utf8))
}

private func message(_ channel: String, _ data: String) -> ClientMessage {
    ClientMessage(channel: Array(channel.utf8), data: Array(data.utf8))
}

@Suite struct PublishRequestReaderTests {
    @Test func oneObject() throws {
        #expect(try read(#"{"channel":"room","data":"hi"}"#).get() == [message("room", "hi")])
    }

    @Test func aList() throws {
        #expect(
            try read(#" [{"channel":"a","data":"1"}, {"Channel":"b","DATA":"2"}] "#).get() == [
                message("a", "1"), message("b", "2"),
            ])
    }

    @Test func theWebSocketRulesApply() throws {
        // Last duplicate wins, null and absent mean empty, other members are ignored, escapes decoded.
        #expect(
            try read(#"{"channel":"x","channel":"y","data":null,"issuer":"me","extra":[1,{"a":2}]}"#).get() == [
                message("y", "")
            ])
        #expect(try read(#"{}"#).get() == [message("", "")])
        #expect(try read(#"{"data":"\u00e9\n"}"#).get() == [message("", "é\n")])
    }

    @Test(arguments: [
        (#"{"channel":"a","data":5}"#, "data must be a string"),
        (#"{"channel":true}"#, "channel must be a string"),
        (#"[]"#, "no messages in the list"),
        (#"[{"channel":"a"}, 3]"#, "each message must be a JSON object"),
        (#""text""#, "body must be a JSON object or an array of objects"),
        (#"null"#, "body must be a JSON object or an array of objects"),
    ])
    func refusals(_ body: String, _ reason: String) {
        guard case .failure(let failure) = read(body) else {
            Issue.record("accepted \(body)")
            return
        }
        #expect(failure.reason == reason)
    }

    /// Found by FuzzPublishRequest: E2 82 opens a three-byte character, the `\n` escape cuts it, AC would
    /// have closed it. The document parser checked the raw bytes on their own and let this through, and the
    /// string came out with U+FFFD in it, where a plainly invalid byte is refused. The parser refuses it now.
    @Test func anEscapeInsideACharacterIsNotUTF8() {
        let body = Array(#"{"data":""#.utf8) + [0xE2, 0x82] + Array(#"\n"#.utf8) + [0xAC] + Array(#""}"#.utf8)
        guard case .failure(let failure) = PublishRequestReader.read(body) else {
            Issue.record("accepted a body that is not UTF-8")
            return
        }
        #expect(failure.reason.hasPrefix("invalid JSON: invalid UTF-8 in string"))
    }

    @Test(arguments: ["", "{", #"{"channel":"a",}"#, "[1,]", #"{"a":1} x"#, "\u{FF}"])
    func invalidJSON(_ body: String) {
        guard case .failure(let failure) = read(body) else {
            Issue.record("accepted \(body)")
            return
        }
        #expect(failure.reason.hasPrefix("invalid JSON"))
    }
}
