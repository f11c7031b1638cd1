import Philote

/// Everything about a run that every loop reads and nobody changes once loops start: the workload, where
/// to connect, the tokens per channel, and the shared state and gauges.
final class BenchPlan: @unchecked Sendable {
    let settings: BenchSettings
    let url: WebSocketURL
    let address: BenchAddress
    /// wss://: the context every connection's TLS session comes from; nil for ws://.
    let tls: BenchTLSContext?
    let deflate: Bool
    /// The token a subscriber reads its channel with (per channel) and a publisher connection writes its
    /// streams' channels with (per connection); nil: none, the URL's `auth` parameter carries it.
    let subscriberTokens: [String?]
    let publisherTokens: [String?]
    let shared = BenchShared()
    /// One per stream (index: stream, see `BenchSettings.streams`).
    let gauges: [BenchPublisherGauge]

    init(
        settings: BenchSettings, url: WebSocketURL, address: BenchAddress, tls: BenchTLSContext?, deflate: Bool,
        subscriberTokens: [String?], publisherTokens: [String?]
    ) {
        self.settings = settings
        self.url = url
        self.address = address
        self.tls = tls
        self.deflate = deflate
        self.subscriberTokens = subscriberTokens
        self.publisherTokens = publisherTokens
        gauges = (0..<settings.streams).map { _ in BenchPublisherGauge(workers: settings.workers) }
    }

    /// The upgrade request of one connection. permessage-deflate is offered only with --deflate (then
    /// without context takeover either way, as the harness offers it), so that a plain run measures plain frames.
    func upgradeRequest(key: String, role: BenchConnection.Role, index: Int, channel: Int) -> [UInt8] {
        var text = "GET \(url.requestTarget) HTTP/1.1\r\n"
        text += "Host: \(url.hostHeader)\r\n"
        text += "Upgrade: websocket\r\nConnection: Upgrade\r\n"
        text += "Sec-WebSocket-Key: \(key)\r\nSec-WebSocket-Version: 13\r\n"
        if deflate {
            text += "Sec-WebSocket-Extensions: permessage-deflate; client_no_context_takeover; server_no_context_takeover\r\n"
        }
        let token = role == .subscriber ? subscriberTokens[channel] : publisherTokens[index]
        if let token { text += "Authorization: Bearer \(token)\r\n" }
        text += "User-Agent: philote-bench/\(PhiloteVersion.string)\r\n\r\n"
        return Array(text.utf8)
    }
}
