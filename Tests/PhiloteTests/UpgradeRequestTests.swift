import Testing
@testable import Philote

/// A valid upgrade head with `changes` applied: a nil value removes the field, a value replaces it
/// (or appends it if absent).
private func head(
    method: String = "GET", major: Int = 1, minor: Int = 1, _ changes: [(String, String?)] = [],
    extra: [(String, String)] = []
) -> RequestHead {
    var headers: [(name: String, value: String)] = [
        ("Host", "server.example.com"), ("Upgrade", "websocket"), ("Connection", "Upgrade"),
        ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="), ("Origin", "http://example.com"),
        ("Sec-WebSocket-Protocol", "chat, superchat"), ("Sec-WebSocket-Version", "13"),
    ]
    for (name, value) in changes {
        if let index = headers.firstIndex(where: { $0.name == name }) {
            if let value { headers[index].value = value } else { headers.remove(at: index) }
        } else if let value {
            headers.append((name, value))
        }
    }
    headers += extra.map { (name: $0.0, value: $0.1) }
    return RequestHead(method: method, target: "/chat", versionMajor: major, versionMinor: minor, headers: headers)
}

private func refusal(_ head: RequestHead) -> HandshakeError? {
    if case .failure(let error) = UpgradeRequest.validate(head) { return error }
    return nil
}

private func accepted(_ head: RequestHead) -> Bool {
    if case .success = UpgradeRequest.validate(head) { return true }
    return false
}

@Suite struct UpgradeRequestTests {
    // MARK: RFC 6455 section 1.3

    @Test func rfcAcceptValueForTheSampleKey() {
        #expect(UpgradeRequest.acceptValue(forKey: "dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
        #expect(UpgradeRequest.guid == "258EAFA5-E914-47DA-95CA-C5AB0DC85B11")
    }

    @Test func rfcRequestIsAcceptedAndAnswered() {
        guard case .complete(let parsed, _) = parseHead(rfcRequest) else {
            Issue.record("the RFC request did not parse")
            return
        }
        guard case .success(let request) = UpgradeRequest.validate(parsed) else {
            Issue.record("the RFC request was refused")
            return
        }
        #expect(request.key == "dGhlIHNhbXBsZSBub25jZQ==")
        #expect(request.acceptValue == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
        let response = String(decoding: HTTPResponse.switchingProtocols(accept: request.acceptValue), as: UTF8.self)
        #expect(response == "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            + "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n")
    }

    @Test func acceptValuesForOtherKeys() {
        // Computed independently: base64(SHA-1(key + GUID)).
        #expect(UpgradeRequest.acceptValue(forKey: "x3JJHMbDL1EzLkh9GBhXDw==") == "HSmrc0sMlYUkAGmm5OPpG2HaGWk=")
        #expect(UpgradeRequest.acceptValue(forKey: "AQIDBAUGBwgJCgsMDQ4PEA==").utf8.count == 28)
    }

    // MARK: What is accepted

    @Test func caseInsensitiveTokensAndCommaLists() {
        #expect(accepted(head([("Upgrade", "WebSocket")])))
        #expect(accepted(head([("Upgrade", "WEBSOCKET")])))
        #expect(accepted(head([("Upgrade", "foo/2, websocket")])))
        #expect(accepted(head([("Connection", "keep-alive, Upgrade")])))
        #expect(accepted(head([("Connection", "upgrade")])))
        #expect(accepted(head([("Connection", "keep-alive,UPGRADE")])))
        #expect(accepted(head([("Connection", "keep-alive")], extra: [("connection", "Upgrade")])))
        #expect(accepted(head([("Origin", nil), ("Sec-WebSocket-Protocol", nil)])))
        #expect(accepted(head([("sec-websocket-key", nil), ("Sec-WebSocket-Key", nil)], extra: [("sec-websocket-key", "AAAAAAAAAAAAAAAAAAAAAA==")])))
    }

    @Test func laterHTTPVersionsAreAccepted() {
        #expect(accepted(head(major: 1, minor: 2)))
        #expect(accepted(head(major: 2, minor: 0)))
    }

    // MARK: Each refusal and its status

    @Test(arguments: ["POST", "HEAD", "PUT", "get", "OPTIONS"])
    func methodOtherThanGETIs405(_ method: String) {
        let error = refusal(head(method: method))
        #expect(error?.status == .methodNotAllowed)
        #expect(error?.headers.contains(where: { $0.0 == "Allow" && $0.1 == "GET" }) == true)
    }

    @Test func http10Is400() {
        #expect(refusal(head(major: 1, minor: 0))?.status == .badRequest)
        #expect(refusal(head(major: 0, minor: 9))?.status == .badRequest)
    }

    @Test func missingHostIs400() {
        #expect(refusal(head([("Host", nil)])) == HandshakeError(.badRequest, "missing Host header"))
    }

    @Test func emptyOrDuplicateHostIs400() {
        #expect(refusal(head([("Host", "")])) == HandshakeError(.badRequest, "invalid Host header"))
        #expect(refusal(head(extra: [("Host", "other.example.com")])) == HandshakeError(.badRequest, "invalid Host header"))
    }

    @Test(arguments: [nil, "", "h2c", "websocket2", "web socket", "TLS/1.0"] as [String?])
    func missingOrWrongUpgradeIs426(_ value: String?) {
        let error = refusal(head([("Upgrade", value)]))
        #expect(error?.status == .upgradeRequired)
        #expect(error?.headers.contains(where: { $0.0 == "Upgrade" && $0.1 == "websocket" }) == true)
    }

    @Test(arguments: [nil, "", "keep-alive", "close", "Upgraded", "keep-alive upgrade"] as [String?])
    func connectionWithoutUpgradeTokenIs400(_ value: String?) {
        #expect(refusal(head([("Connection", value)])) == HandshakeError(.badRequest, "Connection header must contain Upgrade"))
    }

    @Test(arguments: [nil, "", "8", "7", "12", "14", "13, 8", " 13x", "0xd"] as [String?])
    func missingOrWrongVersionIs426WithTheSupportedVersion(_ value: String?) {
        let error = refusal(head([("Sec-WebSocket-Version", value)]))
        #expect(error?.status == .upgradeRequired)
        #expect(error?.headers.contains(where: { $0.0 == "Sec-WebSocket-Version" && $0.1 == "13" }) == true)
    }

    @Test func duplicateVersionIs426() {
        let error = refusal(head(extra: [("Sec-WebSocket-Version", "13")]))
        #expect(error?.status == .upgradeRequired)
    }

    @Test(arguments: [
        nil, "", "dGhlIHNhbXBsZSBub25jZQ", "dGhlIHNhbXBsZSBub25jZQ=", "dGhlIHNhbXBsZSBub25jZQ===",
        "dGhlIHNhbXBsZSBub25j",  // 15 bytes
        "dGhlIHNhbXBsZSBub25jZXM=",  // 17 bytes
        "dGhlIHNhbXBsZSBub25jZR==",  // non-canonical padding bits
        "dGhlIHNhbXBsZSBub25jZQ==dGhlIHNhbXBsZSBub25jZQ==", "dGhlIHNhbXBs ZSBub25jZQ==", "dGhlIHNhbXBsZSBub25jZQ-_",
        "not a key at all",
    ] as [String?])
    func badKeyIs400(_ value: String?) {
        #expect(refusal(head([("Sec-WebSocket-Key", value)])) == HandshakeError(.badRequest, "Sec-WebSocket-Key must be base64 of 16 bytes"))
    }

    @Test func duplicateKeyIs400() {
        #expect(refusal(head(extra: [("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")]))?.status == .badRequest)
    }

    @Test func everyRefusalIs4xxWithAOneLineReason() {
        let heads = [
            head(method: "POST"), head(major: 1, minor: 0), head([("Host", nil)]), head([("Upgrade", nil)]),
            head([("Connection", nil)]), head([("Sec-WebSocket-Version", "8")]), head([("Sec-WebSocket-Key", "x")]),
        ]
        for candidate in heads {
            guard let error = refusal(candidate) else {
                Issue.record("accepted: \(candidate)")
                continue
            }
            #expect((400..<500).contains(error.status.rawValue))
            #expect(!error.reason.isEmpty && !error.reason.contains("\n") && !error.reason.contains("\r"))
        }
    }

    // MARK: Responses

    @Test func versionRefusalResponseCarriesTheVersionHeader() {
        guard let error = refusal(head([("Sec-WebSocket-Version", "8")])) else {
            Issue.record("version 8 accepted")
            return
        }
        let response = String(decoding: HTTPResponse.error(error), as: UTF8.self)
        #expect(response.hasPrefix("HTTP/1.1 426 Upgrade Required\r\n"))
        #expect(response.contains("\r\nSec-WebSocket-Version: 13\r\n"))
        #expect(response.contains("\r\nConnection: close\r\n"))
        let parts = response.split(separator: "\r\n\r\n", omittingEmptySubsequences: false)
        #expect(parts.count == 2)
        let body = String(parts[1])
        #expect(response.contains("\r\nContent-Length: \(body.utf8.count)\r\n"))
        #expect(body == error.reason + "\n")
    }

    @Test func statusPhrases() {
        #expect(HTTPStatus.badRequest.phrase == "Bad Request")
        #expect(HTTPStatus.methodNotAllowed.rawValue == 405)
        #expect(HTTPStatus.upgradeRequired.rawValue == 426)
        let text = String(decoding: HTTPResponse.text(.requestHeaderFieldsTooLarge, "too large"), as: UTF8.self)
        #expect(text.hasPrefix("HTTP/1.1 431 Request Header Fields Too Large\r\n"))
    }
}
