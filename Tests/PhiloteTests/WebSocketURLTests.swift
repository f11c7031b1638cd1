import Testing

@testable import Philote

private func parsed(_ text: String) -> WebSocketURL? {
    if case .success(let url) = WebSocketURL.parse(text) { return url }
    return nil
}

private func refusal(_ text: String) -> String? {
    if case .failure(let error) = WebSocketURL.parse(text) { return error.message }
    return nil
}

@Suite struct WebSocketURLTests {
    @Test func defaultsPortAndPath() {
        let url = parsed("ws://example.com")
        #expect(url?.host == "example.com")
        #expect(url?.port == 80)
        #expect(url?.requestTarget == "/")
        #expect(url?.hostHeader == "example.com")
        #expect(url?.endpoint == "example.com:80")
    }

    @Test func keepsPathQueryAndNonDefaultPort() {
        let url = parsed("WS://127.0.0.1:6380/room/1?x=1&auth=abc")
        #expect(url?.host == "127.0.0.1")
        #expect(url?.port == 6380)
        #expect(url?.requestTarget == "/room/1?x=1&auth=abc")
        #expect(url?.hostHeader == "127.0.0.1:6380")
        #expect(url?.hasAuthParameter == true)
        #expect(url?.description == "ws://127.0.0.1:6380/room/1?x=1&auth=abc")
    }

    @Test func queryWithoutPathGetsSlash() {
        #expect(parsed("ws://h:81?auth=t")?.requestTarget == "/?auth=t")
        #expect(parsed("ws://h/?auth=")?.hasAuthParameter == false)
        #expect(parsed("ws://h/?xauth=1")?.hasAuthParameter == false)
    }

    @Test func ipv6Literal() {
        let url = parsed("ws://[::1]:6380/")
        #expect(url?.host == "::1")
        #expect(url?.hostHeader == "[::1]:6380")
        #expect(url?.endpoint == "[::1]:6380")
    }

    @Test func wssDefaultsToPort443() throws {
        let url = try WebSocketURL.parse("wss://example.com/x").get()
        #expect(url.secure && url.port == 443 && url.hostHeader == "example.com")
        #expect(url.description == "wss://example.com/x")
        let other = try WebSocketURL.parse("wss://example.com:8443/").get()
        #expect(other.port == 8443 && other.hostHeader == "example.com:8443")
        #expect(refusal("http://example.com/") == "invalid URL: the scheme must be ws:// or wss://, got \"http://\"")
    }

    @Test(arguments: [
        "http://h/", "ws://", "ws://:80/", "ws://h:0", "ws://h:65536", "ws://h:", "ws://h:8a", "ws://user@h/",
        "ws://h/#frag", "ws://h/a b", "ws://[::1", "ws://[zz]/", "ws://h h/", "example.com", "://h", "",
    ])
    func invalid(_ text: String) {
        #expect(refusal(text)?.hasPrefix("invalid URL: ") == true)
    }
}
