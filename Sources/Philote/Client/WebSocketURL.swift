/// A `ws://` or `wss://` URL taken apart into what a client needs: the address to connect to, the request target and the
/// `Host` header value. Parsed by hand (no Foundation): the grammar is small (RFC 6455 section 3) and a
/// hand parser can say exactly what is wrong with a URL a user typed.
public struct WebSocketURL: Equatable, Sendable, CustomStringConvertible {
    /// Why a URL was refused; `message` is one line for the user.
    public enum ParseError: Error, Equatable, Sendable {
        case invalid(String)

        public var message: String {
            switch self {
            case .invalid(let why): "invalid URL: \(why)"
            }
        }
    }

    /// `wss://`: the connection is TLS.
    public var secure: Bool
    /// The host to resolve: a name or a numeric address, without the brackets of an IPv6 literal.
    public var host: String
    public var port: Int
    /// Path and query for the request line; never empty ("/" at least).
    public var requestTarget: String
    /// `host[:port]` as the `Host` header wants it: brackets kept, port omitted when it is the default.
    public var hostHeader: String
    /// True when the query carries a non-empty `auth` parameter: the server then finds the token there.
    public var hasAuthParameter: Bool

    /// `host:port` for messages (IPv6 in brackets).
    public var endpoint: String { (host.contains(":") ? "[\(host)]" : host) + ":\(port)" }

    public var description: String { "\(secure ? "wss" : "ws")://\(hostHeader)\(requestTarget)" }

    public static func parse(_ text: String) -> Result<WebSocketURL, ParseError> {
        // The scheme is letters only (RFC 3986 allows a few more, none of them useful here), then "://".
        let schemeEnd = text.firstIndex(where: { !($0.isASCII && $0.isLetter) }) ?? text.endIndex
        guard schemeEnd != text.startIndex, text[schemeEnd...].hasPrefix("://") else {
            return .failure(.invalid("\"\(text)\" is not of the form ws[s]://HOST[:PORT][/PATH]"))
        }
        let scheme = text[..<schemeEnd].lowercased()
        guard scheme == "ws" || scheme == "wss" else {
            return .failure(.invalid("the scheme must be ws:// or wss://, got \"\(scheme)://\""))
        }
        let secure = scheme == "wss"
        let defaultPort = secure ? 443 : 80
        let rest = text[schemeEnd...].dropFirst(3)
        // RFC 6455 section 3: a fragment is meaningless in a WebSocket URI and must not be used.
        if rest.contains("#") { return .failure(.invalid("a WebSocket URL cannot have a #fragment")) }
        let authorityEnd = rest.firstIndex(where: { $0 == "/" || $0 == "?" }) ?? rest.endIndex
        let authority = rest[..<authorityEnd]
        var target = String(rest[authorityEnd...])
        if authority.contains("@") { return .failure(.invalid("user information (user@host) is not supported")) }
        if target.isEmpty { target = "/" } else if target.hasPrefix("?") { target = "/" + target }
        // The target goes verbatim into the request line, where a space or control byte would break it.
        if target.unicodeScalars.contains(where: { $0.value <= 0x20 || $0.value >= 0x7F }) {
            return .failure(.invalid("spaces, control and non-ASCII characters in the path must be percent-encoded"))
        }

        var host: Substring
        var portText: Substring?
        if authority.hasPrefix("[") {
            guard let close = authority.firstIndex(of: "]") else {
                return .failure(.invalid("unterminated IPv6 address (missing ])"))
            }
            host = authority[authority.index(after: authority.startIndex)..<close]
            let after = authority[authority.index(after: close)...]
            if !after.isEmpty {
                guard after.hasPrefix(":") else { return .failure(.invalid("unexpected text after the IPv6 address")) }
                portText = after.dropFirst()
            }
            guard !host.isEmpty, host.allSatisfy({ $0.isHexDigit || $0 == ":" || $0 == "." }) else {
                return .failure(.invalid("\"[\(host)]\" is not an IPv6 address"))
            }
        } else {
            if let colon = authority.firstIndex(of: ":") {
                host = authority[..<colon]
                portText = authority[authority.index(after: colon)...]
            } else {
                host = authority
            }
            guard !host.isEmpty else { return .failure(.invalid("the host is missing in \"\(text)\"")) }
            guard
                host.allSatisfy({ ($0.isASCII && ($0.isLetter || $0.isNumber)) || $0 == "-" || $0 == "." || $0 == "_" })
            else {
                return .failure(.invalid("\"\(host)\" is not a host name or address"))
            }
        }
        var port = defaultPort
        if let portText {
            guard !portText.isEmpty, portText.count <= 5, portText.allSatisfy({ $0.isASCII && $0.isNumber }),
                let value = Int(portText), (1...65535).contains(value)
            else {
                return .failure(.invalid("the port must be a number from 1 to 65535, got \"\(portText)\""))
            }
            port = value
        }
        let bracketed = host.contains(":") ? "[\(host)]" : String(host)
        let query = target.split(separator: "?", maxSplits: 1).dropFirst().first ?? ""
        let hasAuth = query.split(separator: "&").contains { $0.hasPrefix("auth=") && $0.count > 5 }
        return .success(
            WebSocketURL(
                secure: secure, host: String(host), port: port, requestTarget: target,
                hostHeader: port == defaultPort ? bracketed : "\(bracketed):\(port)", hasAuthParameter: hasAuth))
    }
}
