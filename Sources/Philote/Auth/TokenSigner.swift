/// Mints tokens for `philote token`, `philote client` and tests.
public struct TokenSigner: Sendable {
    private let secret: [UInt8]
    public var algorithm: HMACAlgorithm

    public init(secret: String, algorithm: HMACAlgorithm = .hs256) {
        self.secret = Array(secret.utf8)
        self.algorithm = algorithm
    }

    public func sign(_ claims: Claims) -> String {
        var payload = "{\"read\":\(Self.list(claims.read)),\"write\":\(Self.list(claims.write))"
        if claims.api { payload += ",\"api\":true" }
        if let exp = claims.expiresAt { payload += ",\"exp\":\(Self.numericDate(exp))" }
        if let nbf = claims.notBefore { payload += ",\"nbf\":\(Self.numericDate(nbf))" }
        if let iat = claims.issuedAt { payload += ",\"iat\":\(Self.numericDate(iat))" }
        payload += "}"
        let signingInput = Self.encodedHeader(algorithm) + "." + Base64URL.encode(Array(payload.utf8))
        return signingInput + "." + Base64URL.encode(algorithm.authenticate(Array(signingInput.utf8), key: secret))
    }

    /// The header segment of every token signed with `algorithm`.
    static func encodedHeader(_ algorithm: HMACAlgorithm) -> String {
        Base64URL.encode(Array("{\"alg\":\"\(algorithm.rawValue)\",\"typ\":\"JWT\"}".utf8))
    }

    /// Whole seconds as an integer, as every JWT library writes them; a fraction as it is.
    static func numericDate(_ seconds: Double) -> String {
        seconds.rounded() == seconds && abs(seconds) < 9e15 ? String(Int64(seconds)) : String(seconds)
    }

    private static func list(_ items: [String]) -> String {
        "[" + items.map { JSONStringEncoder.quoted($0) }.joined(separator: ",") + "]"
    }
}
