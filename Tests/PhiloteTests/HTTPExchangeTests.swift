import Glibc
import Testing

@testable import Philote

/// An `HTTPExchange.Step`, comparable.
private enum Outcome: Equatable, CustomStringConvertible {
    case needMore
    case refused(HTTPStatus, head: RequestHead?)
    case request(RequestHead, body: [UInt8])
    case upgrade(RequestHead, consumed: Int)

    init(_ step: HTTPExchange.Step) {
        switch step {
        case .needMore: self = .needMore
        case .refused(let error, let head): self = .refused(error.status, head: head)
        case .request(let head, let body): self = .request(head, body: body)
        case .upgrade(let head, let consumed): self = .upgrade(head, consumed: consumed)
        }
    }

    var description: String {
        switch self {
        case .needMore: "needMore"
        case .refused(let status, let head): "refused(\(status.rawValue), head: \(head?.target ?? "nil"))"
        case .request(let head, let body): "request(\(head.method) \(head.target), body: \(body.count) bytes)"
        case .upgrade(let head, let consumed): "upgrade(\(head.target), consumed: \(consumed))"
        }
    }
}

/// The exchange's state by name (its parser and body reader are not comparable).
private func stateName(_ exchange: HTTPExchange) -> String {
    switch exchange.state {
    case .readingHead: "readingHead"
    case .readingBody: "readingBody"
    case .awaitingAnswer: "awaitingAnswer"
    case .over: "over"
    }
}

/// One `feed`, with the body limit and choice the tests use unless they say otherwise.
private func feed(
    _ exchange: inout HTTPExchange, _ bytes: [UInt8], bodyLimit: Int = 1 << 20,
    readsBody: (RequestHead) -> Bool = { _ in true }
) -> Outcome {
    Outcome(bytes.withUnsafeBytes { exchange.feed($0, bodyLimit: bodyLimit, readsBody: readsBody) })
}

/// Feeds `chunks` in turn and returns every outcome.
private func feedAll(_ chunks: [[UInt8]], bodyLimit: Int = 1 << 20) -> (outcomes: [Outcome], exchange: HTTPExchange) {
    var exchange = HTTPExchange(maxHeadSize: 8192)
    let outcomes = chunks.map { feed(&exchange, $0, bodyLimit: bodyLimit) }
    return (outcomes, exchange)
}

private let getHead = "GET /health?full=1 HTTP/1.1\r\nHost: example.com\r\nAccept: */*\r\n\r\n"
private let getRequest = RequestHead(
    method: "GET", target: "/health?full=1", versionMajor: 1, versionMinor: 1,
    headers: [("Host", "example.com"), ("Accept", "*/*")])

private let postBody = Array(#"{"channel":"news","data":"hello"}"#.utf8)
private let postHead =
    "POST /api/publish HTTP/1.1\r\nHost: example.com\r\nContent-Length: \(postBody.count)\r\n\r\n"
private let postRequest = RequestHead(
    method: "POST", target: "/api/publish", versionMajor: 1, versionMinor: 1,
    headers: [("Host", "example.com"), ("Content-Length", String(postBody.count))])

private let upgradeHead =
    "GET /chat HTTP/1.1\r\nHost: example.com\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    + "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
private let upgradeRequest = RequestHead(
    method: "GET", target: "/chat", versionMajor: 1, versionMinor: 1,
    headers: [
        ("Host", "example.com"), ("Upgrade", "websocket"), ("Connection", "Upgrade"),
        ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="), ("Sec-WebSocket-Version", "13"),
    ])

@Suite struct HTTPExchangeTests {
    /// A plain request head cut in two at every byte: needMore until the last byte, then the same request.
    @Test func aHeadSplitAtEveryByteGivesTheSameRequest() {
        let bytes = Array(getHead.utf8)
        for cut in 0..<bytes.count {
            let (outcomes, exchange) = feedAll([Array(bytes[..<cut]), Array(bytes[cut...])])
            #expect(outcomes == [.needMore, .request(getRequest, body: [])], "cut at \(cut)")
            #expect(stateName(exchange) == "awaitingAnswer")
        }
        let (outcomes, _) = feedAll(bytes.map { [$0] })
        #expect(outcomes.last == .request(getRequest, body: []))
        #expect(outcomes.dropLast().allSatisfy { $0 == .needMore })
    }

    /// A body announced with Content-Length is collected across feeds, however the head and body are cut.
    @Test func aBodyIsCollectedAcrossFeeds() {
        let bytes = Array(postHead.utf8) + postBody
        for cut in 0..<bytes.count {
            let (outcomes, exchange) = feedAll([Array(bytes[..<cut]), Array(bytes[cut...])])
            #expect(outcomes == [.needMore, .request(postRequest, body: postBody)], "cut at \(cut)")
            #expect(stateName(exchange) == "awaitingAnswer")
        }
        // The head alone, then the body a byte at a time.
        let (outcomes, _) = feedAll([Array(postHead.utf8)] + postBody.map { [$0] })
        #expect(outcomes.last == .request(postRequest, body: postBody))
        #expect(outcomes.dropLast().allSatisfy { $0 == .needMore })
    }

    /// While the body is incomplete the exchange is reading it; bytes after the announced length are not part of it.
    @Test func theBodyIsExactlyTheAnnouncedLength() {
        var exchange = HTTPExchange(maxHeadSize: 8192)
        #expect(feed(&exchange, Array(postHead.utf8) + postBody.prefix(5)) == .needMore)
        #expect(stateName(exchange) == "readingBody")
        #expect(
            feed(&exchange, Array(postBody.dropFirst(5)) + Array("GET / HTTP/1.1\r\n\r\n".utf8))
                == .request(postRequest, body: postBody))
    }

    /// An application that answers from the head gets the request with an empty body, asked once with the head;
    /// the body that follows is ignored.
    @Test func aBodyTheApplicationDoesNotReadIsNotBuffered() {
        var exchange = HTTPExchange(maxHeadSize: 8192)
        var asked: [RequestHead] = []
        let outcome = feed(&exchange, Array(postHead.utf8) + postBody.prefix(3)) {
            asked.append($0)
            return false
        }
        #expect(outcome == .request(postRequest, body: []))
        #expect(asked == [postRequest])
        #expect(stateName(exchange) == "awaitingAnswer")
        #expect(feed(&exchange, Array(postBody.dropFirst(3))) == .needMore)
        #expect(stateName(exchange) == "awaitingAnswer")
    }

    /// A request without a body never asks whether the body is wanted.
    @Test func noBodyNoQuestion() {
        var exchange = HTTPExchange(maxHeadSize: 8192)
        var asked = 0
        let outcome = feed(&exchange, Array(getHead.utf8)) { _ in
            asked += 1
            return true
        }
        #expect(outcome == .request(getRequest, body: []))
        #expect(asked == 0)
    }

    /// A body over the limit is refused with 413 from its head, before any of it is read; the head is known.
    @Test func aBodyOverTheLimitIsRefusedWithItsHead() {
        var exchange = HTTPExchange(maxHeadSize: 8192)
        let outcome = feed(&exchange, Array(postHead.utf8), bodyLimit: postBody.count - 1)
        #expect(outcome == .refused(.contentTooLarge, head: postRequest))
        #expect(stateName(exchange) == "over")
        #expect(feed(&exchange, postBody) == .needMore)
        // Exactly the limit is fine.
        var atLimit = HTTPExchange(maxHeadSize: 8192)
        #expect(
            feed(&atLimit, Array(postHead.utf8) + postBody, bodyLimit: postBody.count)
                == .request(postRequest, body: postBody))
    }

    /// A malformed Content-Length is refused with 400, with the head.
    @Test func aMalformedContentLengthIsRefusedWithItsHead() {
        var exchange = HTTPExchange(maxHeadSize: 8192)
        let text = "POST /api/publish HTTP/1.1\r\nHost: example.com\r\nContent-Length: 12abc\r\n\r\n"
        guard case .refused(let status, let head) = feed(&exchange, Array(text.utf8)) else {
            Issue.record("not refused")
            return
        }
        #expect(status == .badRequest)
        #expect(head?.target == "/api/publish")
    }

    /// A malformed head is refused with 400, and a head over the size limit with 431; no head is known.
    @Test func aMalformedOrOversizedHeadIsRefusedWithoutAHead() {
        var malformed = HTTPExchange(maxHeadSize: 8192)
        #expect(feed(&malformed, Array("GET / HTTP/1.1\nHost: x\n\n".utf8)) == .refused(.badRequest, head: nil))
        #expect(stateName(malformed) == "over")
        #expect(feed(&malformed, Array(getHead.utf8)) == .needMore, "nothing more is read")

        var garbage = HTTPExchange(maxHeadSize: 8192)
        #expect(feed(&garbage, Array("NOT HTTP AT ALL\r\n\r\n".utf8)) == .refused(.badRequest, head: nil))

        var oversized = HTTPExchange(maxHeadSize: 64)
        #expect(feed(&oversized, Array("GET / HTTP/1.1\r\nX-Padding: ".utf8)) == .needMore)
        #expect(
            feed(&oversized, [UInt8](repeating: 0x61, count: 64))
                == .refused(.requestHeaderFieldsTooLarge, head: nil))
    }

    /// An upgrade ends the exchange at the head: `consumed` is where the first frame starts in the last input,
    /// however the head was cut, and whatever else comes is not read as HTTP.
    @Test func anUpgradeSaysWhereTheFramesStart() {
        let head = Array(upgradeHead.utf8)
        let frames = ClientFrameEncoder.frame(.text, payload: Array("hi".utf8), maskKey: 0x1234_5678)
        for cut in 0..<head.count {
            var exchange = HTTPExchange(maxHeadSize: 8192)
            #expect(feed(&exchange, Array(head[..<cut])) == .needMore)
            let outcome = feed(&exchange, Array(head[cut...]) + frames)
            #expect(outcome == .upgrade(upgradeRequest, consumed: head.count - cut), "cut at \(cut)")
            #expect(stateName(exchange) == "over")
            #expect(!exchange.isAwaitingAnswer)
            #expect(feed(&exchange, frames) == .needMore)
        }
        // Alone in its input, the head is consumed whole.
        var alone = HTTPExchange(maxHeadSize: 8192)
        #expect(feed(&alone, head) == .upgrade(upgradeRequest, consumed: head.count))
    }

    /// `Upgrade: websocket` is recognized among other tokens, in any case; a body length on it is not looked at.
    @Test func anUpgradeIsRecognizedByItsToken() {
        var exchange = HTTPExchange(maxHeadSize: 8192)
        let text = "GET /chat HTTP/1.1\r\nHost: h\r\nUpgrade: h2c, WebSocket\r\nContent-Length: 99999999\r\n\r\n"
        guard case .upgrade(let head, let consumed) = feed(&exchange, Array(text.utf8), bodyLimit: 10) else {
            Issue.record("not an upgrade")
            return
        }
        #expect(head.target == "/chat" && consumed == text.utf8.count)
    }

    /// Once the request is handed over the exchange waits for its answer, and input meanwhile is ignored (a
    /// pipelined second request is never served).
    @Test func afterTheRequestInputIsIgnored() {
        var exchange = HTTPExchange(maxHeadSize: 8192)
        #expect(feed(&exchange, Array(getHead.utf8) + Array(getHead.utf8)) == .request(getRequest, body: []))
        #expect(exchange.isAwaitingAnswer)
        #expect(feed(&exchange, Array(getHead.utf8)) == .needMore)
        #expect(feed(&exchange, Array(upgradeHead.utf8)) == .needMore)
        #expect(exchange.isAwaitingAnswer)
    }

    /// `end()` stops the exchange in any state: a head or body in progress is dropped, and an answer that was
    /// awaited is no longer.
    @Test func endStopsEverything() {
        var inHead = HTTPExchange(maxHeadSize: 8192)
        #expect(feed(&inHead, Array(getHead.utf8.prefix(10))) == .needMore)
        inHead.end()
        #expect(stateName(inHead) == "over")
        #expect(feed(&inHead, Array(getHead.utf8.dropFirst(10))) == .needMore)
        #expect(stateName(inHead) == "over")

        var inBody = HTTPExchange(maxHeadSize: 8192)
        #expect(feed(&inBody, Array(postHead.utf8)) == .needMore)
        #expect(stateName(inBody) == "readingBody")
        inBody.end()
        #expect(feed(&inBody, postBody) == .needMore)
        #expect(stateName(inBody) == "over")

        var answered = HTTPExchange(maxHeadSize: 8192)
        #expect(feed(&answered, Array(getHead.utf8)) == .request(getRequest, body: []))
        answered.end()
        #expect(!answered.isAwaitingAnswer)
        #expect(feed(&answered, Array(getHead.utf8)) == .needMore)
    }
}
