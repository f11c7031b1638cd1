/// The client side of the opening handshake (RFC 6455 section 4.1): the upgrade request with a fresh
/// `Sec-WebSocket-Key`, and the checks a client must make on the answer before it sends a frame. Pure code:
/// the caller does the socket I/O, so every rule here is unit-tested.
public struct ClientHandshake: Sendable {
    /// Why the server's answer is not a usable upgrade; `message` is the one line the user sees.
    public enum Failure: Error, Equatable, Sendable {
        /// 401: the server refused the token; `reason` is its plain-text explanation.
        case authenticationFailed(reason: String)
        /// Any other non-101 status, with the body the server sent (trimmed, on one line).
        case httpStatus(Int, body: String)
        /// A 101 that breaks section 4.1's rules (wrong accept value, missing Upgrade, ...).
        case invalidUpgrade(String)

        public var message: String {
            switch self {
            case .authenticationFailed(let reason): "authentication failed: \(reason)"
            case .httpStatus(let status, let body):
                body.isEmpty ? "handshake failed: HTTP \(status)" : "handshake failed: HTTP \(status): \(body)"
            case .invalidUpgrade(let why): "handshake failed: \(why)"
            }
        }
    }

    /// base64 of 16 random bytes (section 4.1, item 7).
    public let key: String

    public init(key: String) {
        self.key = key
    }

    /// A fresh key; the nonce must be random per connection, so the system generator is the default.
    public init<Generator: RandomNumberGenerator>(using generator: inout Generator) {
        let bytes = (0..<16).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
        key = bytes.withUnsafeBytes { Base64.encode($0) }
    }

    public init() {
        var generator = SystemRandomNumberGenerator()
        self.init(using: &generator)
    }

    /// The upgrade request. The token travels in `Authorization: Bearer`, the form every Philote server reads
    /// first; nil sends no header (the URL's `auth` parameter carries it, or the server will refuse).
    public func request(for url: WebSocketURL, token: String?) -> [UInt8] {
        var text = "GET \(url.requestTarget) HTTP/1.1\r\n"
        text += "Host: \(url.hostHeader)\r\n"
        text += "Upgrade: websocket\r\n"
        text += "Connection: Upgrade\r\n"
        text += "Sec-WebSocket-Key: \(key)\r\n"
        text += "Sec-WebSocket-Version: 13\r\n"
        // permessage-deflate, as browsers offer it: the server's messages may come compressed.
        text += "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"
        if let token { text += "Authorization: Bearer \(token)\r\n" }
        text += "User-Agent: philote-client/\(PhiloteVersion.string)\r\n"
        text += "\r\n"
        return Array(text.utf8)
    }

    /// Checks the answer (`body` is what followed a non-101 head, possibly empty); nil when it is a valid upgrade.
    public func check(_ response: HTTPResponseHead, body: [UInt8] = []) -> Failure? {
        guard response.status == 101 else {
            let text = Self.oneLine(body)
            if response.status == 401 {
                return .authenticationFailed(reason: text.isEmpty ? "HTTP 401 \(response.reasonPhrase)" : text)
            }
            return .httpStatus(response.status, body: text)
        }
        guard response.tokens("Upgrade").contains(where: { $0.asciiCaseInsensitiveEquals("websocket") }) else {
            return .invalidUpgrade("the 101 response lacks \"Upgrade: websocket\"")
        }
        guard response.tokens("Connection").contains(where: { $0.asciiCaseInsensitiveEquals("upgrade") }) else {
            return .invalidUpgrade("the 101 response lacks \"Connection: Upgrade\"")
        }
        // Proves the server read this request's key, not a cached or proxied answer (section 4.1, item 4).
        let accepts = response.values("Sec-WebSocket-Accept")
        guard accepts.count == 1, accepts[0] == UpgradeRequest.acceptValue(forKey: key) else {
            return .invalidUpgrade("wrong Sec-WebSocket-Accept in the 101 response")
        }
        // Only the offered extension may come back, with parameters RFC 7692 allows (items 5 and 6).
        let extensions = ExtensionOffer.parse(response.values("Sec-WebSocket-Extensions"))
        if extensions.count > 1 || (extensions.count == 1 && Self.deflateContextTakeover(extensions[0]) == nil) {
            return .invalidUpgrade("the server chose an extension the client did not offer")
        }
        if !response.tokens("Sec-WebSocket-Protocol").isEmpty {
            return .invalidUpgrade("the server chose a subprotocol the client did not offer")
        }
        return nil
    }

    /// When the 101 accepted permessage-deflate: whether the server keeps its compression context between
    /// messages (then the client's inflater must keep it too). nil: no compression.
    public static func negotiatedDeflate(_ response: HTTPResponseHead) -> Bool? {
        let extensions = ExtensionOffer.parse(response.values("Sec-WebSocket-Extensions"))
        guard extensions.count == 1, let first = extensions[0] else { return nil }
        return deflateContextTakeover(first)
    }

    /// For a valid permessage-deflate response element: true unless it says server_no_context_takeover.
    private static func deflateContextTakeover(_ element: ExtensionOffer?) -> Bool? {
        guard let element, element.name.asciiCaseInsensitiveEquals("permessage-deflate") else { return nil }
        var takeover = true
        var seen = Set<String>()
        for (name, value) in element.parameters {
            let key = name.lowercased()
            guard seen.insert(key).inserted else { return nil }
            switch key {
            case "server_no_context_takeover":
                guard value == nil else { return nil }
                takeover = false
            case "client_no_context_takeover":
                guard value == nil else { return nil }
            case "server_max_window_bits", "client_max_window_bits":
                guard let value, let bits = Int(value), (8...15).contains(bits) else { return nil }
            default:
                return nil
            }
        }
        return takeover
    }

    /// A body as one printable line of at most 300 characters, for an error message.
    static func oneLine(_ body: [UInt8]) -> String {
        let text = String(decoding: body, as: UTF8.self)
        var line = ""
        var lastWasSpace = true
        for scalar in text.unicodeScalars {
            let isSpace = scalar.value < 0x20 || scalar.value == 0x7F || scalar == " "
            if isSpace {
                if !lastWasSpace { line.append(" ") }
            } else {
                line.unicodeScalars.append(scalar)
            }
            lastWasSpace = isSpace
        }
        if line.hasSuffix(" ") { line.removeLast() }
        if line.count > 300 { line = String(line.prefix(300)) + "..." }
        return line
    }
}
