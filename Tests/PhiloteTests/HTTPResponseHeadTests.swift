import Testing

@testable import Philote

@Suite struct HTTPResponseHeadTests {
    @Test func parsesStatusHeadersAndLength() {
        let bytes = Array("HTTP/1.1 401 Unauthorized\r\nContent-Length: 5\r\nX-A: 1\r\n\r\nhello".utf8)
        guard case .head(let head, let length) = HTTPResponseHead.parse(bytes) else {
            Issue.record("not parsed")
            return
        }
        #expect(head.status == 401)
        #expect(head.reasonPhrase == "Unauthorized")
        #expect(head.contentLength == 5)
        #expect(head.values("x-a") == ["1"])
        #expect(Array(bytes[length...]) == Array("hello".utf8))
    }

    @Test func incompleteUntilTheBlankLine() {
        let text = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
        for end in 0...text.utf8.count {
            guard case .incomplete = HTTPResponseHead.parse(Array(text.utf8.prefix(end))) else {
                Issue.record("complete at \(end)")
                return
            }
        }
    }

    @Test func acceptsBareLineFeedsAndFoldedHeaders() {
        let bytes = Array("HTTP/1.0 503\nRetry-After: 1\n  2\n\n".utf8)
        guard case .head(let head, let length) = HTTPResponseHead.parse(bytes) else {
            Issue.record("not parsed")
            return
        }
        #expect(head.status == 503)
        #expect(head.reasonPhrase == "")
        #expect(head.values("Retry-After") == ["1 2"])
        #expect(length == bytes.count)
    }

    @Test(arguments: ["SSH-2.0-OpenSSH\r\n\r\n", "HTTP/1.1 20 OK\r\n\r\n", "HTTP/1.1 200 OK\r\nno colon\r\n\r\n"])
    func invalid(_ text: String) {
        guard case .invalid = HTTPResponseHead.parse(Array(text.utf8)) else {
            Issue.record("accepted \(text)")
            return
        }
    }

    @Test func refusesAnEndlessHead() {
        let bytes = Array("HTTP/1.1 200 OK\r\n".utf8) + [UInt8](repeating: 0x61, count: HTTPResponseHead.maxLength)
        guard case .invalid = HTTPResponseHead.parse(bytes) else {
            Issue.record("accepted")
            return
        }
    }
}
