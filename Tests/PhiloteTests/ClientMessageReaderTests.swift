import Testing

@testable import Philote

@Suite struct ClientMessageReaderTests {
    func read(_ text: String) -> Result<ClientMessage, ClientMessageReader.Failure> {
        Array(text.utf8).withUnsafeBytes { ClientMessageReader.read($0) }
    }

    func message(_ channel: String, _ data: String) -> Result<ClientMessage, ClientMessageReader.Failure> {
        .success(ClientMessage(channel: Array(channel.utf8), data: Array(data.utf8)))
    }

    @Test func readsTheProtocolExample() {
        #expect(read(#"{"channel": "room-1", "data": "any string"}"#) == message("room-1", "any string"))
    }

    @Test func matchesKeysCaseInsensitively() {
        #expect(read(#"{"Channel":"a","Data":"b"}"#) == message("a", "b"))
        #expect(read(#"{"CHANNEL":"a","dAtA":"b"}"#) == message("a", "b"))
    }

    @Test func lastDuplicateWinsAndUnknownKeysAreSkipped() {
        #expect(read(#"{"channel":"a","channel":"b","data":"1","Data":"2"}"#) == message("b", "2"))
        #expect(read(#"{"issuer":"me","x":{"y":[1,2,{"z":null}]},"channel":"c","n":-1.5e2}"#) == message("c", ""))
    }

    @Test func nullOrMissingMeansEmpty() {
        #expect(read(#"{"channel":"a"}"#) == message("a", ""))
        #expect(read(#"{"data":null,"channel":null}"#) == message("", ""))
        #expect(read("{}") == message("", ""))
    }

    @Test func decodesEscapes() {
        #expect(read(#"{"data":"a\"b\\c\/d\n\u00e9\ud83d\ude00"}"#) == message("", "a\"b\\c/d\né😀"))
    }

    @Test func trailingWhitespaceOnly() {
        #expect(read("{\"data\":\"x\"} \n\t") == message("", "x"))
        #expect(read(#"{"data":"x"} x"#) == .failure(.init(reason: "invalid JSON: data after the object")))
        #expect(read(#"{"data":"x"}{}"#) == .failure(.init(reason: "invalid JSON: data after the object")))
    }

    @Test(arguments: ["null", "[]", "\"x\"", "1", "", "  "])
    func refusesNonObjects(_ text: String) {
        #expect(read(text) == .failure(.init(reason: "message must be a JSON object")))
    }

    @Test func refusesWrongTypes() {
        #expect(read(#"{"data":1}"#) == .failure(.init(reason: "data must be a string")))
        #expect(read(#"{"data":{"a":1}}"#) == .failure(.init(reason: "data must be a string")))
        #expect(read(#"{"channel":["a"]}"#) == .failure(.init(reason: "channel must be a string")))
        #expect(read(#"{"data":true}"#) == .failure(.init(reason: "data must be a string")))
    }

    @Test(arguments: [#"{"data":"x""#, #"{"data":"x",}"#, #"{data:"x"}"#, #"{"a":01}"#, #"{"a":tru}"#, "{\"data\":\"\u{01}\"}"])
    func refusesMalformedJSON(_ text: String) {
        guard case .failure = read(text) else {
            Issue.record("accepted \(text)")
            return
        }
    }

    @Test func refusesDeepNestingWithoutCrashing() {
        let deep = "{\"x\":" + String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000) + "}"
        guard case .failure = read(deep) else {
            Issue.record("accepted deep nesting")
            return
        }
    }

    // MARK: Token refresh

    func refresh(_ token: String) -> Result<ClientMessage, ClientMessageReader.Failure> {
        .success(ClientMessage(channel: [], data: [], token: Array(token.utf8)))
    }

    @Test func anAuthMemberAloneIsARefresh() {
        #expect(read(#"{"auth":"a.b.c"}"#) == refresh("a.b.c"))
        #expect(read(#"{"Auth":"x","AUTH":"y"}"#) == refresh("y"))
        #expect(read(#"{"auth":"x","issuer":"me","n":[1]}"#) == refresh("x"))
        #expect(read(#"{"auth":"\u0041"}"#) == refresh("A"))
        #expect(read(#"{"auth":""}"#) == refresh(""))
    }

    @Test func anAuthMemberBesideChannelOrDataIsAnUnknownKeyOfAPublish() {
        #expect(read(#"{"channel":"c","auth":"x"}"#) == message("c", ""))
        #expect(read(#"{"auth":"x","data":"d"}"#) == message("", "d"))
        #expect(read(#"{"auth":5,"data":null}"#) == message("", ""))
        #expect(read(#"{"auth":{"nested":[true]},"channel":"c","data":"d"}"#) == message("c", "d"))
    }

    @Test func aRefreshTokenMustBeAString() {
        for text in [#"{"auth":5}"#, #"{"auth":null}"#, #"{"auth":["x"]}"#, #"{"auth":"x","auth":false}"#] {
            #expect(read(text) == .failure(.init(reason: "auth must be a string")), "\(text)")
        }
        #expect(read(#"{"auth":false,"auth":"x"}"#) == refresh("x"))
    }

    @Test func aMalformedAuthValueHasTheSkippedMembersReasons() {
        #expect(read(#"{"auth":[1,}"#) == .failure(.init(reason: "invalid JSON")))
        #expect(read(#"{"auth":"x"} y"#) == .failure(.init(reason: "invalid JSON: data after the object")))
    }

    @Test func theHTTPPublishBodySkipsAuth() {
        #expect(PublishRequestReader.read(Array(#"{"auth":"x"}"#.utf8)) == .success([ClientMessage(channel: [], data: [])]))
    }
}
