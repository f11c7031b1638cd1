import CSystem

/// A request head that passed RFC 6455 section 4.2.1, with the values the response needs.
public struct UpgradeRequest: Sendable {
    public static let guid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

    public var head: RequestHead
    public var key: String

    /// Validates `head` as a WebSocket opening handshake, or says which rule it broke.
    public static func validate(_ head: RequestHead) -> Result<UpgradeRequest, HandshakeError> {
        guard head.method == "GET" else {
            return .failure(
                HandshakeError(.methodNotAllowed, "WebSocket upgrade requires GET", headers: [("Allow", "GET")]))
        }
        guard head.versionMajor > 1 || (head.versionMajor == 1 && head.versionMinor >= 1) else {
            return .failure(HandshakeError(.badRequest, "WebSocket upgrade requires HTTP/1.1 or later"))
        }
        let hosts = head.values("Host")
        guard hosts.count == 1, !hosts[0].isEmpty else {
            return .failure(HandshakeError(.badRequest, hosts.isEmpty ? "missing Host header" : "invalid Host header"))
        }
        guard head.tokens("Upgrade").contains(where: { $0.asciiCaseInsensitiveEquals("websocket") }) else {
            return .failure(
                HandshakeError(.upgradeRequired, "expected Upgrade: websocket", headers: [("Upgrade", "websocket")]))
        }
        guard head.tokens("Connection").contains(where: { $0.asciiCaseInsensitiveEquals("upgrade") }) else {
            return .failure(HandshakeError(.badRequest, "Connection header must contain Upgrade"))
        }
        let versions = head.values("Sec-WebSocket-Version")
        guard versions.count == 1, versions[0] == "13" else {
            return .failure(
                HandshakeError(
                    .upgradeRequired, "unsupported WebSocket version; this server speaks 13",
                    headers: [("Sec-WebSocket-Version", "13")]))
        }
        let keys = head.values("Sec-WebSocket-Key")
        guard keys.count == 1, let decoded = Base64.decode(keys[0]), decoded.count == 16 else {
            return .failure(HandshakeError(.badRequest, "Sec-WebSocket-Key must be base64 of 16 bytes"))
        }
        return .success(UpgradeRequest(head: head, key: keys[0]))
    }

    /// `Sec-WebSocket-Accept`: base64(SHA-1(key + GUID)) (section 4.2.2).
    public static func acceptValue(forKey key: String) -> String {
        let input = Array((key + guid).utf8)
        var digest = [UInt8](repeating: 0, count: 20)
        _ = input.withUnsafeBufferPointer { source in
            digest.withUnsafeMutableBufferPointer { CSystem_sha1(source.baseAddress, source.count, $0.baseAddress) }
        }
        return digest.withUnsafeBytes { Base64.encode($0) }
    }

    public var acceptValue: String { Self.acceptValue(forKey: key) }
}
