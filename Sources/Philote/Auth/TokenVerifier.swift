/// Verifies compact JWTs signed with the server's secret (RFC 7519 with RFC 7515 HMAC): the algorithm
/// is pinned to HS256/384/512, the signature compared in constant time, and claim types checked.
public struct TokenVerifier: Sendable {
    private let secret: [UInt8]

    public init(secret: String) {
        self.secret = Array(secret.utf8)
    }

    /// `now` is Unix seconds; there is no leeway.
    public func verify(_ token: some StringProtocol, now: Int64) -> Result<Claims, TokenError> {
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3 else { return .failure(.malformed("expected three segments")) }
        guard let headerBytes = Base64URL.decode(parts[0]), let header = try? JSONParser.parse(headerBytes),
            case .object = header
        else { return .failure(.malformed("bad header")) }
        guard case .string(let name)? = header["alg"], let algorithm = HMACAlgorithm(rawValue: name) else {
            return .failure(.unsupportedAlgorithm)
        }
        guard let signature = Base64URL.decode(parts[2]) else { return .failure(.malformed("bad signature encoding")) }
        let signingInput = token.utf8.prefix(parts[0].utf8.count + 1 + parts[1].utf8.count)
        let expected = algorithm.authenticate(signingInput, key: secret)
        guard constantTimeEquals(signature, expected) else { return .failure(.invalidSignature) }
        // Only a signed payload is parsed: a forger never reaches the JSON parser.
        guard let payloadBytes = Base64URL.decode(parts[1]), let payload = try? JSONParser.parse(payloadBytes),
            case .object = payload
        else { return .failure(.malformed("bad payload")) }
        var claims = Claims()
        switch Self.stringList(payload["read"]) {
        case .some(let list): claims.read = list
        case .none: return .failure(.invalidClaim("read"))
        }
        switch Self.stringList(payload["write"]) {
        case .some(let list): claims.write = list
        case .none: return .failure(.invalidClaim("write"))
        }
        switch payload["api"] {
        case nil, .null?: break
        case .bool(let flag)?: claims.api = flag
        default: return .failure(.invalidClaim("api"))
        }
        for name in ["exp", "nbf", "iat"] {
            let seconds: Int64?
            switch payload[name] {
            case nil, .null?: seconds = nil
            case .number(let value, _)? where value >= -9e15 && value <= 9e15: seconds = Int64(value.rounded(.down))
            default: return .failure(.invalidClaim(name))
            }
            switch name {
            case "exp": claims.expiresAt = seconds
            case "nbf": claims.notBefore = seconds
            default: claims.issuedAt = seconds
            }
        }
        if let exp = claims.expiresAt, now >= exp { return .failure(.expired) }
        if let nbf = claims.notBefore, now < nbf { return .failure(.notYetValid) }
        if let iat = claims.issuedAt, now < iat { return .failure(.issuedInFuture) }
        return .success(claims)
    }

    /// `[String]` for an array of strings, `[]` for absent or null, nil for anything else.
    private static func stringList(_ value: JSONValue?) -> [String]? {
        switch value {
        case nil, .null?: return []
        case .array(let elements)?:
            var list: [String] = []
            for element in elements {
                guard case .string(let text) = element else { return nil }
                list.append(text)
            }
            return list
        default: return nil
        }
    }
}
