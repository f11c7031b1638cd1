import Testing
@testable import Philote

/// The opening handshake of RFC 6455 section 1.3 (client side), as it goes on the wire.
let rfcRequest = "GET /chat HTTP/1.1\r\nHost: server.example.com\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    + "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nOrigin: http://example.com\r\n"
    + "Sec-WebSocket-Protocol: chat, superchat\r\nSec-WebSocket-Version: 13\r\n\r\n"

private func feed(_ parser: inout RequestHeadParser, _ bytes: [UInt8]) -> RequestHeadParser.Result {
    bytes.withUnsafeBytes { parser.feed($0) }
}

/// Parses `text` in one read.
func parseHead(_ text: String, maxHeadSize: Int = 8192) -> RequestHeadParser.Result {
    var parser = RequestHeadParser(maxHeadSize: maxHeadSize)
    return feed(&parser, Array(text.utf8))
}

private func badRequest(_ reason: String) -> RequestHeadParser.Result {
    .failure(HandshakeError(.badRequest, reason))
}

@Suite struct RequestHeadParserTests {
    static let rfcHead = RequestHead(
        method: "GET", target: "/chat", versionMajor: 1, versionMinor: 1,
        headers: [
            ("Host", "server.example.com"), ("Upgrade", "websocket"), ("Connection", "Upgrade"),
            ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="), ("Origin", "http://example.com"),
            ("Sec-WebSocket-Protocol", "chat, superchat"), ("Sec-WebSocket-Version", "13"),
        ])

    @Test func rfcRequestInOneRead() {
        #expect(parseHead(rfcRequest) == .complete(Self.rfcHead, consumed: rfcRequest.utf8.count))
    }

    @Test func splitIntoTwoReadsAtEveryBytePosition() {
        let bytes = Array(rfcRequest.utf8)
        for split in 1..<bytes.count {
            var parser = RequestHeadParser()
            #expect(feed(&parser, Array(bytes[..<split])) == .needMore, "split \(split)")
            #expect(parser.bufferedCount == split)
            #expect(feed(&parser, Array(bytes[split...])) == .complete(Self.rfcHead, consumed: bytes.count - split), "split \(split)")
            #expect(parser.bufferedCount == 0)
        }
    }

    @Test func oneByteAtATime() {
        var parser = RequestHeadParser()
        let bytes = Array(rfcRequest.utf8)
        for byte in bytes.dropLast() { #expect(feed(&parser, [byte]) == .needMore) }
        #expect(feed(&parser, [bytes.last!]) == .complete(Self.rfcHead, consumed: 1))
    }

    @Test func emptyReadNeedsMore() {
        var parser = RequestHeadParser()
        #expect(feed(&parser, []) == .needMore)
        #expect(feed(&parser, Array("GET / HTTP/1.1\r\n".utf8)) == .needMore)
        #expect(feed(&parser, []) == .needMore)
    }

    // MARK: Bytes after the head are left for the caller

    @Test func bytesAfterTheHeadAreNotConsumed() {
        let firstFrame: [UInt8] = [0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58]
        let head = Array(rfcRequest.utf8)
        var parser = RequestHeadParser()
        #expect(feed(&parser, head + firstFrame) == .complete(Self.rfcHead, consumed: head.count))
        // With the blank line split over two reads and the frame in the second read.
        for split in (head.count - 4)..<head.count {
            var split2 = RequestHeadParser()
            #expect(feed(&split2, Array(head[..<split])) == .needMore)
            #expect(feed(&split2, Array(head[split...]) + firstFrame) == .complete(Self.rfcHead, consumed: head.count - split),
                    "split \(split)")
        }
        // Even a second request-looking head after the first is left alone.
        var pipelined = RequestHeadParser()
        #expect(feed(&pipelined, head + head) == .complete(Self.rfcHead, consumed: head.count))
    }

    @Test func bytesAfterTheHeadDoNotCountTowardsTheCap() {
        let head = Array("GET / HTTP/1.1\r\nHost: a\r\n\r\n".utf8)
        var parser = RequestHeadParser(maxHeadSize: 1024)
        let result = feed(&parser, head + Array(repeating: 0x82, count: 5000))
        guard case .complete(_, let consumed) = result else {
            Issue.record("expected a complete head, got \(result)")
            return
        }
        #expect(consumed == head.count)
    }

    // MARK: The size cap (431)

    static var tooLarge: RequestHeadParser.Result { .failure(
        HandshakeError(.requestHeaderFieldsTooLarge, "request head larger than 1024 bytes")) }

    /// A head of exactly `size` bytes.
    static func head(ofSize size: Int) -> [UInt8] {
        let start = Array("GET / HTTP/1.1\r\nHost: a\r\nX-Pad: ".utf8)
        let end = Array("\r\n\r\n".utf8)
        return start + Array(repeating: UInt8(ascii: "p"), count: size - start.count - end.count) + end
    }

    @Test func headOfExactlyTheCapIsAccepted() {
        let head = Self.head(ofSize: 1024)
        var parser = RequestHeadParser(maxHeadSize: 1024)
        let result = feed(&parser, head)
        guard case .complete(_, let consumed) = result else {
            Issue.record("expected a complete head, got \(result)")
            return
        }
        #expect(consumed == 1024)
    }

    @Test func headOneByteOverTheCapIs431() {
        var parser = RequestHeadParser(maxHeadSize: 1024)
        #expect(feed(&parser, Self.head(ofSize: 1025)) == Self.tooLarge)
        #expect(HTTPStatus.requestHeaderFieldsTooLarge.rawValue == 431)
    }

    @Test func headOverTheCapSplitAcrossReadsIs431() {
        let head = Self.head(ofSize: 1025)
        for split in [1, 500, 1020, 1021, 1022, 1023, 1024] {
            var parser = RequestHeadParser(maxHeadSize: 1024)
            #expect(feed(&parser, Array(head[..<split])) == .needMore, "split \(split)")
            #expect(feed(&parser, Array(head[split...])) == Self.tooLarge, "split \(split)")
        }
    }

    @Test func endlessHeadIs431AsSoonAsItPassesTheCap() {
        var parser = RequestHeadParser(maxHeadSize: 1024)
        #expect(feed(&parser, Array("GET / HTTP/1.1\r\n".utf8)) == .needMore)
        let filler = Array(repeating: UInt8(ascii: "a"), count: 1024 - 16)
        #expect(feed(&parser, filler) == .needMore)
        #expect(parser.bufferedCount == 1024)
        #expect(feed(&parser, [UInt8(ascii: "a")]) == Self.tooLarge)
        #expect(parser.bufferedCount == 0)
        // A single huge read is refused too, and never buffered whole.
        var big = RequestHeadParser(maxHeadSize: 1024)
        #expect(feed(&big, Array(repeating: UInt8(ascii: "a"), count: 1 << 20)) == Self.tooLarge)
    }

    @Test func defaultCapIs8KiB() {
        #expect(RequestHeadParser().maxHeadSize == 8192)
        let head = Array("GET / HTTP/1.1\r\nX: ".utf8) + Array(repeating: UInt8(ascii: "v"), count: 8200) + Array("\r\n\r\n".utf8)
        #expect(parseHead(String(decoding: head, as: UTF8.self))
            == .failure(HandshakeError(.requestHeaderFieldsTooLarge, "request head larger than 8192 bytes")))
    }

    // MARK: CRLF rules

    @Test func bareLFIsRefused() {
        #expect(parseHead("GET / HTTP/1.1\nHost: a\r\n\r\n") == badRequest("bare LF in request head"))
        #expect(parseHead("GET / HTTP/1.1\r\nHost: a\nX: b\r\n\r\n") == badRequest("bare LF in request head"))
    }

    @Test func bareLFFailsAtOnceWithoutWaitingForTheEndOfTheHead() {
        // LF-only line endings never produce CRLFCRLF: waiting would hold the connection until the timeout.
        #expect(parseHead("GET / HTTP/1.1\nHost: a\n\n") == badRequest("bare LF in request head"))
        #expect(parseHead("GET / HTTP/1.1\n") == badRequest("bare LF in request head"))
        #expect(parseHead("\n") == badRequest("bare LF in request head"))
        var parser = RequestHeadParser()
        #expect(feed(&parser, Array("GET / HTTP/1.1\r".utf8)) == .needMore)
        #expect(feed(&parser, Array("\nHost: a\r\n".utf8)) == .needMore)  // CR and LF split over two reads
        #expect(feed(&parser, Array("X: b\n".utf8)) == badRequest("bare LF in request head"))
        #expect(parser.bufferedCount == 0)
    }

    @Test func bareLFSplitAtEveryBytePositionIsRefused() {
        let bytes = Array("GET / HTTP/1.1\r\nHost: a\nX: b\r\n\r\n".utf8)
        for split in 1..<bytes.count {
            var parser = RequestHeadParser()
            let first = feed(&parser, Array(bytes[..<split]))
            let result = first == .needMore ? feed(&parser, Array(bytes[split...])) : first
            #expect(result == badRequest("bare LF in request head"), "split \(split)")
        }
    }

    @Test func lineFeedsInBytesAfterTheHeadAreNotLookedAt() {
        let head = Array("GET / HTTP/1.1\r\nHost: a\r\n\r\n".utf8)
        let result = parseHead(String(decoding: head + [0x0A, 0x0A, 0x81], as: UTF8.self))
        guard case .complete(_, let consumed) = result else {
            Issue.record("expected a complete head, got \(result)")
            return
        }
        #expect(consumed == head.count)
    }

    @Test func bareCRIsRefused() {
        #expect(parseHead("GET / HTTP/1.1\rHost: a\r\n\r\n") == badRequest("bare CR in request head"))
        #expect(parseHead("GET / HTTP/1.1\r\nHost: a\r\r\n\r\n") == badRequest("bare CR in request head"))
    }

    @Test func nulIsRefused() {
        #expect(parseHead("GET / HTTP/1.1\r\nHost: a\0b\r\n\r\n") == badRequest("NUL in request head"))
    }

    @Test func emptyRequestLineIsRefused() {
        #expect(parseHead("\r\n\r\n") == badRequest("empty request line"))
    }

    // MARK: Request line

    @Test(arguments: [
        "GET /\r\n\r\n", "GET / HTTP/1.1 extra\r\n\r\n", "GET  / HTTP/1.1\r\n\r\n", "GET / HTTP/1.1 \r\n\r\n",
        " GET / HTTP/1.1\r\n\r\n", "GET\t/\tHTTP/1.1\r\n\r\n",
    ])
    func malformedRequestLine(_ text: String) {
        let result = parseHead(text)
        guard case .failure(let error) = result else {
            Issue.record("\(text.debugDescription) was accepted")
            return
        }
        #expect(error.status == .badRequest, "\(text.debugDescription)")
    }

    @Test func malformedMethod() {
        #expect(parseHead("G(T / HTTP/1.1\r\n\r\n") == badRequest("malformed method"))
    }

    @Test func malformedTarget() {
        #expect(parseHead("GET /a\u{7F}b HTTP/1.1\r\n\r\n") == badRequest("malformed request target"))
        #expect(parseHead("GET /é HTTP/1.1\r\n\r\n") == badRequest("malformed request target"))
    }

    @Test(arguments: ["HTTP/1", "HTTP/1.10", "http/1.1", "HTTP/x.1", "HTTP/1,1", "HTTPS/1.1", "HTTP/11.1"])
    func malformedVersion(_ version: String) {
        #expect(parseHead("GET / \(version)\r\n\r\n") == badRequest("malformed HTTP version"))
    }

    @Test func versionDigitsAreParsed() {
        guard case .complete(let head, _) = parseHead("OPTIONS * HTTP/1.0\r\n\r\n") else {
            Issue.record("not parsed")
            return
        }
        #expect(head.method == "OPTIONS" && head.target == "*")
        #expect(head.versionMajor == 1 && head.versionMinor == 0)
        #expect(head.headers.isEmpty)
    }

    // MARK: Header fields

    @Test func headerLineWithoutAColon() {
        #expect(parseHead("GET / HTTP/1.1\r\nHost a\r\n\r\n") == badRequest("header line without a colon"))
    }

    @Test(arguments: ["Host : a", " Host: a", "\tHost: a", ": a", "Ho(st: a", "Hö: a"])
    func malformedHeaderName(_ line: String) {
        // Whitespace before the colon and obsolete line folding are refused (RFC 9112 section 5).
        #expect(parseHead("GET / HTTP/1.1\r\n\(line)\r\n\r\n") == badRequest("malformed header name"), "\(line.debugDescription)")
    }

    @Test func obsoleteLineFoldingIsRefused() {
        for folded in ["GET / HTTP/1.1\r\nX-A: one\r\n two\r\n\r\n", "GET / HTTP/1.1\r\nX-A: one\r\n\ttwo: x\r\n\r\n"] {
            guard case .failure(let error) = parseHead(folded) else {
                Issue.record("\(folded.debugDescription) was accepted")
                continue
            }
            #expect(error.status == .badRequest)
        }
    }

    @Test func controlCharacterInValue() {
        #expect(parseHead("GET / HTTP/1.1\r\nX: a\u{01}b\r\n\r\n") == badRequest("control character in header value"))
        #expect(parseHead("GET / HTTP/1.1\r\nX: a\u{7F}\r\n\r\n") == badRequest("control character in header value"))
    }

    @Test func valuesAreTrimmedAndKeepInnerWhitespace() {
        guard case .complete(let head, _) = parseHead("GET /x?y=1 HTTP/1.1\r\nA:  \t one  two \t \r\nB:\r\nc-D:v\r\nE: é\r\n\r\n") else {
            Issue.record("not parsed")
            return
        }
        #expect(head.headers.map(\.name) == ["A", "B", "c-D", "E"])
        #expect(head.headers.map(\.value) == ["one  two", "", "v", "é"])
        #expect(head.path == "/x")
        #expect(head.target == "/x?y=1")
    }

    @Test func headerLookupIsCaseInsensitiveAndSplitsTokens() {
        let head = RequestHead(
            method: "GET", target: "/", versionMajor: 1, versionMinor: 1,
            headers: [("connection", "keep-alive, Upgrade"), ("CONNECTION", " ,x ,, "), ("Other", "y")])
        #expect(head.values("Connection") == ["keep-alive, Upgrade", " ,x ,, "])
        #expect(head.tokens("connection") == ["keep-alive", "Upgrade", "x"])
        #expect(head.values("Missing").isEmpty)
        #expect(head.path == "/")
    }
}
