/// One Redis instance named in `REDIS_URL`: `redis://[user:password@]host[:port][/db]` or
/// `unix://[:password@]/path/to/socket`.
public struct RedisEndpoint: Sendable, Equatable {
    public enum Address: Sendable, Equatable {
        case tcp(host: String, port: Int)
        case unix(path: String)
    }

    public var address: Address
    public var user: String?
    public var password: String?
    public var database = 0

    /// What the endpoint is called in logs and in the channel-to-shard hash. It leaves out the credentials
    /// and the database, so every server that lists the same instance hashes a channel to it alike.
    public var label: String {
        switch address {
        case .tcp(let host, let port): host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
        case .unix(let path): "unix:\(path)"
        }
    }

    /// Parses one URL; the error says what is wrong with it.
    public static func parse(_ text: String) throws(RedisEndpointError) -> RedisEndpoint {
        func fail(_ problem: String) -> RedisEndpointError {
            RedisEndpointError("\(problem) in \"\(redactingPassword(text))\"")
        }
        let bytes = Array(text.utf8)
        if text.hasPrefix("rediss://") { throw fail("TLS to Redis (rediss://) is not supported") }
        let isUnix = text.hasPrefix("unix://")
        guard isUnix || text.hasPrefix("redis://") else {
            throw fail("the scheme must be redis:// or unix://")
        }
        var rest = Array(bytes.dropFirst(isUnix ? 7 : 8))
        var endpoint = RedisEndpoint(address: .unix(path: ""))
        // The authority ends at the first '/' (for unix:// it holds only credentials); credentials end at its
        // last '@'. A '/' in a password must be written %2F.
        let authorityEnd = rest.firstIndex(of: UInt8(ascii: "/")) ?? rest.count
        if let at = rest[..<authorityEnd].lastIndex(of: UInt8(ascii: "@")) {
            let credentials = rest[..<at]
            if let colon = credentials.firstIndex(of: UInt8(ascii: ":")) {
                endpoint.user = try decode(credentials[..<colon], fail)
                endpoint.password = try decode(credentials[(colon + 1)...], fail)
            } else {
                endpoint.password = try decode(credentials, fail)
            }
            if endpoint.user?.isEmpty == true { endpoint.user = nil }
            rest.removeSubrange(...at)
        }
        if isUnix {
            let path = String(decoding: rest, as: UTF8.self)
            guard path.hasPrefix("/"), path.count > 1 else { throw fail("unix:// needs an absolute socket path") }
            endpoint.address = .unix(path: path)
            return endpoint
        }
        let slash = rest.firstIndex(of: UInt8(ascii: "/")) ?? rest.count
        let authority = rest[..<slash]
        var host: ArraySlice<UInt8>
        var portText: ArraySlice<UInt8>?
        if authority.first == UInt8(ascii: "[") {
            guard let close = authority.firstIndex(of: UInt8(ascii: "]")) else { throw fail("unclosed [") }
            host = authority[(authority.startIndex + 1)..<close]
            let after = authority[(close + 1)...]
            if !after.isEmpty {
                guard after.first == UInt8(ascii: ":") else { throw fail("junk after ]") }
                portText = after.dropFirst()
            }
        } else if let colon = authority.firstIndex(of: UInt8(ascii: ":")) {
            host = authority[..<colon]
            portText = authority[(colon + 1)...]
        } else {
            host = authority
        }
        guard !host.isEmpty else { throw fail("the host is missing") }
        var port = 6379
        if let portText {
            guard let parsed = Int(String(decoding: portText, as: UTF8.self)), (1...65535).contains(parsed) else {
                throw fail("the port must be a number from 1 to 65535")
            }
            port = parsed
        }
        endpoint.address = .tcp(host: String(decoding: host, as: UTF8.self), port: port)
        let path = rest[slash...].dropFirst()
        if !path.isEmpty {
            guard let database = Int(String(decoding: path, as: UTF8.self)), database >= 0 else {
                throw fail("the path must be a database number")
            }
            endpoint.database = database
        }
        return endpoint
    }

    /// `REDIS_URL` as a comma-separated list: one endpoint per shard, no instance twice.
    public static func parseList(_ text: String) throws(RedisEndpointError) -> [RedisEndpoint] {
        var endpoints: [RedisEndpoint] = []
        for part in text.split(separator: ",", omittingEmptySubsequences: false) {
            let trimmed = String(part.trimmingHTTPWhitespace())
            guard !trimmed.isEmpty else { throw RedisEndpointError("has an empty entry") }
            let endpoint = try parse(trimmed)
            if endpoints.contains(where: { $0.label == endpoint.label }) {
                throw RedisEndpointError("lists \(endpoint.label) twice")
            }
            endpoints.append(endpoint)
        }
        return endpoints
    }

    /// Percent-decoding for credentials (RFC 3986 userinfo), so a password may hold ':', '@' or '/'.
    private static func decode(
        _ bytes: ArraySlice<UInt8>, _ fail: (String) -> RedisEndpointError
    ) throws(RedisEndpointError) -> String {
        var out: [UInt8] = []
        var index = bytes.startIndex
        while index < bytes.endIndex {
            if bytes[index] == UInt8(ascii: "%") {
                guard index + 2 < bytes.endIndex, let high = hexValue(bytes[index + 1]),
                    let low = hexValue(bytes[index + 2])
                else { throw fail("a bad %-escape in the credentials") }
                out.append(high << 4 | low)
                index += 3
            } else {
                out.append(bytes[index])
                index += 1
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }

    /// The URL with its password replaced, for error messages and logs.
    static func redactingPassword(_ text: String) -> String {
        let bytes = Array(text.utf8)
        guard let colon = bytes.firstIndex(of: UInt8(ascii: ":")), bytes[colon...].starts(with: "://".utf8) else {
            return text
        }
        let start = colon + 3
        let authorityEnd = bytes[start...].firstIndex(of: UInt8(ascii: "/")) ?? bytes.count
        guard let at = bytes[start..<authorityEnd].lastIndex(of: UInt8(ascii: "@")) else { return text }
        let credentials = bytes[start..<at]
        var shown = Array(bytes[..<start])
        if let userEnd = credentials.firstIndex(of: UInt8(ascii: ":")) {
            shown += bytes[start..<userEnd] + Array(":***".utf8)
        } else {
            shown += Array("***".utf8)
        }
        return String(decoding: shown + bytes[at...], as: UTF8.self)
    }
}
