import Testing

@testable import Philote

private func head(_ text: String) -> HTTPResponseHead {
    guard case .head(let head, _) = HTTPResponseHead.parse(Array(text.utf8)) else { fatalError("bad fixture") }
    return head
}

@Suite struct ClientHandshakeTests {
    // RFC 6455 section 1.3's sample key and its accept value.
    let handshake = ClientHandshake(key: "dGhlIHNhbXBsZSBub25jZQ==")
    let good = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"

    @Test func requestCarriesKeyHostAndBearerToken() {
        guard case .success(let url) = WebSocketURL.parse("ws://127.0.0.1:6380/chat?x=1") else { return }
        let text = String(decoding: handshake.request(for: url, token: "T0K"), as: UTF8.self)
        #expect(text.hasPrefix("GET /chat?x=1 HTTP/1.1\r\nHost: 127.0.0.1:6380\r\n"))
        #expect(text.contains("\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"))
        #expect(text.contains("\r\nSec-WebSocket-Version: 13\r\n"))
        #expect(text.contains("\r\nAuthorization: Bearer T0K\r\n"))
        #expect(text.hasSuffix("\r\n\r\n"))
        // The request must parse as a valid upgrade on the server side.
        var parser = RequestHeadParser()
        let result = Array(text.utf8).withUnsafeBytes { parser.feed($0) }
        guard case .complete(let parsed, _) = result else {
            Issue.record("server parser refused the request")
            return
        }
        guard case .success = UpgradeRequest.validate(parsed) else {
            Issue.record("not a valid upgrade")
            return
        }
        let noToken = String(decoding: handshake.request(for: url, token: nil), as: UTF8.self)
        #expect(!noToken.contains("Authorization"))
    }

    @Test func freshKeysAreSixteenRandomBytes() {
        let a = ClientHandshake(), b = ClientHandshake()
        #expect(a.key != b.key)
        #expect(Base64.decode(a.key)?.count == 16)
    }

    @Test func acceptsTheRFCSampleAnswer() {
        let response = head(good + "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n")
        #expect(handshake.check(response) == nil)
    }

    @Test func refusesAWrongAcceptValue() {
        let response = head(good + "Sec-WebSocket-Accept: AAAAAAAAAAAAAAAAAAAAAAAAAAA=\r\n\r\n")
        #expect(handshake.check(response) == (.invalidUpgrade("wrong Sec-WebSocket-Accept in the 101 response")))
    }

    @Test func refusesMissingUpgradeOrUnofferedExtension() {
        let accept = "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
        let noUpgrade = head("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n" + accept + "\r\n")
        #expect(handshake.check(noUpgrade) == (.invalidUpgrade("the 101 response lacks \"Upgrade: websocket\"")))
        let other = head(good + accept + "Sec-WebSocket-Extensions: x-webkit-deflate-frame\r\n\r\n")
        guard case .invalidUpgrade = handshake.check(other) else {
            Issue.record("an extension that was not offered was accepted")
            return
        }
        let badParameter = head(good + accept + "Sec-WebSocket-Extensions: permessage-deflate; foo\r\n\r\n")
        guard case .invalidUpgrade = handshake.check(badParameter) else {
            Issue.record("an unknown permessage-deflate parameter was accepted")
            return
        }
    }

    @Test func offersAndAcceptsPermessageDeflate() {
        let request = String(decoding: handshake.request(for: try! WebSocketURL.parse("ws://h/").get(), token: nil), as: UTF8.self)
        #expect(request.contains("Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"))
        let accept = "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
        let noTakeover = head(good + accept + "Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover\r\n\r\n")
        #expect(handshake.check(noTakeover) == nil)
        #expect(ClientHandshake.negotiatedDeflate(noTakeover) == false)
        let takeover = head(good + accept + "Sec-WebSocket-Extensions: permessage-deflate\r\n\r\n")
        #expect(ClientHandshake.negotiatedDeflate(takeover) == true)
        #expect(ClientHandshake.negotiatedDeflate(head(good + accept + "\r\n")) == nil)
    }

    @Test func unauthorizedReportsTheServersReason() {
        let result = handshake.check(head("HTTP/1.1 401 Unauthorized\r\n\r\n"), body: Array("token expired\n".utf8))
        #expect(result == (.authenticationFailed(reason: "token expired")))
        if let failure = result { #expect(failure.message == "authentication failed: token expired") }
        let empty = handshake.check(head("HTTP/1.1 401 Unauthorized\r\n\r\n"))
        #expect(empty == (.authenticationFailed(reason: "HTTP 401 Unauthorized")))
    }

    @Test func otherStatusesReportStatusAndBodyOnOneLine() {
        let result = handshake.check(
            head("HTTP/1.1 503 Service Unavailable\r\n\r\n"), body: Array("too many\r\nconnections\n".utf8))
        #expect(result == (.httpStatus(503, body: "too many connections")))
        if let failure = result {
            #expect(failure.message == "handshake failed: HTTP 503: too many connections")
        }
        #expect(ClientHandshake.Failure.httpStatus(404, body: "").message == "handshake failed: HTTP 404")
    }
}
