import Testing

@testable import Philote

@Suite struct ServerMessageEncoderTests {
    func encode(_ channel: String, _ data: String) -> String {
        let bytes = Array(channel.utf8).withUnsafeBytes { channel in
            Array(data.utf8).withUnsafeBytes { data in
                ServerMessageEncoder.encode(issuer: "0f8fad5b-d9cb-469f-a165-70867728950e", channel: channel, data: data)
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    @Test func keyOrderAndNewline() {
        #expect(encode("room-1", "any string") == #"{"issuer":"0f8fad5b-d9cb-469f-a165-70867728950e","channel":"room-1","data":"any string"}"# + "\n")
    }

    @Test func omitsEmptyFields() {
        #expect(encode("", "x") == #"{"issuer":"0f8fad5b-d9cb-469f-a165-70867728950e","data":"x"}"# + "\n")
        #expect(encode("c", "") == #"{"issuer":"0f8fad5b-d9cb-469f-a165-70867728950e","channel":"c"}"# + "\n")
    }

    @Test func escapesLikeGo() {
        #expect(encode("", "<a href=\"x\">&</a>") == #"{"issuer":"0f8fad5b-d9cb-469f-a165-70867728950e","data":"\u003ca href=\"x\"\u003e\u0026\u003c/a\u003e"}"# + "\n")
        #expect(encode("", "\u{2028}\u{2029}é😀\\\n\r\t\u{01}\u{1F}") == #"{"issuer":"0f8fad5b-d9cb-469f-a165-70867728950e","data":"\u2028\u2029é😀\\\n\r\t\u0001\u001f"}"# + "\n")
        // E2 that is not U+2028/9 passes through.
        #expect(encode("", "\u{2030}") == #"{"issuer":"0f8fad5b-d9cb-469f-a165-70867728950e","data":"‰"}"# + "\n")
    }
}
