import Philote

/// The token rules read as plainly as possible (string splitting, a bit-at-a-time base64url decoder, the
/// one-shot HMAC, the header and claims looked up in a whole `JSONValue` tree), as `TokenVerifier` applied
/// them before it was made fast and read its JSON without a tree (`TokenJSON`): the fuzz target checks that
/// both give the same result, refusal reason included, for every input.
struct PlainTokenVerifier {
    let secret: [UInt8]

    init(secret: String) { self.secret = Array(secret.utf8) }

    func verify(_ token: String, now: Double) -> Result<Claims, TokenError> {
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3 else { return .failure(.malformed("expected three segments")) }
        guard let headerBytes = Self.decode(parts[0]), let header = try? JSONParser.parse(headerBytes),
            case .object = header
        else { return .failure(.malformed("bad header")) }
        guard case .string(let name)? = header["alg"], let algorithm = HMACAlgorithm(rawValue: name) else {
            return .failure(.unsupportedAlgorithm)
        }
        guard let signature = Self.decode(parts[2]) else { return .failure(.malformed("bad signature encoding")) }
        let expected = algorithm.authenticate(Array((parts[0] + "." + parts[1]).utf8), key: secret)
        guard signature == expected else { return .failure(.invalidSignature) }
        guard let payloadBytes = Self.decode(parts[1]), let payload = try? JSONParser.parse(payloadBytes),
            case .object = payload
        else { return .failure(.malformed("bad payload")) }
        var claims = Claims()
        guard let read = Self.stringList(payload["read"]) else { return .failure(.invalidClaim("read")) }
        guard let write = Self.stringList(payload["write"]) else { return .failure(.invalidClaim("write")) }
        claims.read = read
        claims.write = write
        switch payload["api"] {
        case nil, .null?: break
        case .bool(let flag)?: claims.api = flag
        default: return .failure(.invalidClaim("api"))
        }
        for name in ["exp", "nbf", "iat"] {
            var seconds: Double?
            switch payload[name] {
            case nil, .null?: break
            case .number(let value, _)? where value >= -9e15 && value <= 9e15: seconds = value
            default: return .failure(.invalidClaim(name))
            }
            if name == "exp" { claims.expiresAt = seconds }
            if name == "nbf" { claims.notBefore = seconds }
            if name == "iat" { claims.issuedAt = seconds }
        }
        if let exp = claims.expiresAt, now >= exp { return .failure(.expired) }
        if let nbf = claims.notBefore, now < nbf { return .failure(.notYetValid) }
        if let iat = claims.issuedAt, now < iat { return .failure(.issuedInFuture) }
        return .success(claims)
    }

    /// Each byte's six-bit value in the base64url alphabet, or nil. Built once: looking each character up in the
    /// alphabet with `firstIndex(of:)` took half of the fuzz target's time, every comparison instrumented.
    static let sextets: [UInt8?] = {
        var table = [UInt8?](repeating: nil, count: 256)
        for (value, char) in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8.enumerated() {
            table[Int(char)] = UInt8(value)
        }
        return table
    }()

    /// base64url without padding, six bits at a time; leftover bits must be zero and fewer than six.
    static func decode(_ text: Substring) -> [UInt8]? {
        var out: [UInt8] = []
        out.reserveCapacity(text.utf8.count * 3 / 4)
        var bits: UInt32 = 0
        var bitCount = 0
        for char in text.utf8 {
            guard let value = sextets[Int(char)] else { return nil }
            bits = bits << 6 | UInt32(value)
            bitCount += 6
            if bitCount >= 8 {
                bitCount -= 8
                out.append(UInt8(truncatingIfNeeded: bits >> UInt32(bitCount)))
                bits &= (1 << UInt32(bitCount)) - 1
            }
        }
        guard bitCount < 6, bits == 0 else { return nil }
        return out
    }

    static func stringList(_ value: JSONValue?) -> [String]? {
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
