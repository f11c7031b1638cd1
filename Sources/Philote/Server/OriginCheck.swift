/// `CHECK_ORIGIN=true`: a browser's `Origin` must name the host it connects to (as Go's websocket
/// upgrader checks it). A missing `Origin` (a non-browser client) is allowed.
enum OriginCheck {
    static func refusal(_ head: RequestHead) -> HandshakeError? {
        guard let origin = head.values("Origin").first else { return nil }
        let host = head.values("Host").first ?? ""
        let parts = origin.split(separator: "://", maxSplits: 1)
        guard parts.count == 2 else { return HandshakeError(.forbidden, "origin not allowed") }
        let authority = parts[1].prefix { $0 != "/" && $0 != "?" && $0 != "#" }
        // Userinfo is not part of the origin's host.
        let hostPart = authority.split(separator: "@").last.map(Substring.init) ?? authority
        guard !hostPart.isEmpty, hostPart.asciiCaseInsensitiveEquals(host) else {
            return HandshakeError(.forbidden, "origin not allowed")
        }
        return nil
    }
}
