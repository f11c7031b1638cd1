import CSystem

#if canImport(Glibc)
    import Glibc
#endif

/// Verifies compact JWTs signed with the server's secret (RFC 7519 with RFC 7515 HMAC): the algorithm
/// is pinned to HS256/384/512, the signature compared in constant time, and claim types checked.
///
/// Every WebSocket upgrade verifies a token, so a reconnect storm is mostly this: the token is read as
/// bytes, the secret is prepared once per algorithm, and the header that nearly every token carries is
/// recognised without decoding it.
public struct TokenVerifier: Sendable {
    private let hs256: HMACKey
    private let hs384: HMACKey
    private let hs512: HMACKey
    /// The encoded header `TokenSigner` writes for each algorithm, which the common JWT libraries write
    /// too: parsing it always gives that algorithm.
    private let signerHeaders: [(segment: [UInt8], algorithm: HMACAlgorithm)]

    public init(secret: String) {
        let secret = Array(secret.utf8)
        hs256 = HMACKey(algorithm: .hs256, secret: secret)
        hs384 = HMACKey(algorithm: .hs384, secret: secret)
        hs512 = HMACKey(algorithm: .hs512, secret: secret)
        signerHeaders = HMACAlgorithm.allCases.map { (Array(TokenSigner.encodedHeader($0).utf8), $0) }
    }

    /// `now` is Unix seconds with their fraction; there is no leeway.
    public func verify(_ token: some StringProtocol, now: Double) -> Result<Claims, TokenError> {
        if let result = token.utf8.withContiguousStorageIfAvailable({ verify(UnsafeRawBufferPointer($0), now: now) }) {
            return result
        }
        return Array(token.utf8).withUnsafeBytes { verify($0, now: now) }
    }

    private func verify(_ token: UnsafeRawBufferPointer, now: Double) -> Result<Claims, TokenError> {
        guard let (header, payload, signature) = Self.segments(of: token) else {
            return .failure(.malformed("expected three segments"))
        }
        let algorithm: HMACAlgorithm
        switch self.algorithm(header) {
        case .success(let named): algorithm = named
        case .failure(let error): return .failure(error)
        }
        let signingInput = UnsafeRawBufferPointer(rebasing: token[..<(header.count + 1 + payload.count)])
        if let error = check(signature, of: signingInput, algorithm: algorithm) { return .failure(error) }
        // Only a signed payload is parsed: a forger never reaches the JSON parser.
        guard let payloadBytes = Base64URL.decode(payload) else { return .failure(.malformed("bad payload")) }
        switch TokenJSON.claims(inPayload: payloadBytes) {
        case .success(let claims): return Self.checkTimes(of: claims, now: now)
        case .failure(let error): return .failure(error)
        }
    }

    /// The three dot-separated segments, or nil for any other number of them.
    private static func segments(
        of token: UnsafeRawBufferPointer
    ) -> (header: UnsafeRawBufferPointer, payload: UnsafeRawBufferPointer, signature: UnsafeRawBufferPointer)? {
        guard let base = token.baseAddress else { return nil }
        let payloadStart: Int
        let signatureStart: Int
        if isASCII(token) {
            let dot = Int32(UInt8(ascii: "."))
            guard let firstDot = memchr(base, dot, token.count) else { return nil }
            payloadStart = base.distance(to: firstDot) + 1
            guard let secondDot = memchr(base + payloadStart, dot, token.count - payloadStart) else { return nil }
            signatureStart = base.distance(to: secondDot) + 1
            guard memchr(base + signatureStart, dot, token.count - signatureStart) == nil else { return nil }
        } else {
            // Such a token is refused whatever it holds, but for the reason it always got: the segments were
            // split on the character ".", and a dot that a combining mark follows (or a prepended mark
            // precedes) is part of another character.
            let parts = String(decoding: token, as: UTF8.self).split(separator: ".", omittingEmptySubsequences: false)
            guard parts.count == 3 else { return nil }
            payloadStart = parts[0].utf8.count + 1
            signatureStart = payloadStart + parts[1].utf8.count + 1
        }
        return (
            UnsafeRawBufferPointer(rebasing: token[..<(payloadStart - 1)]),
            UnsafeRawBufferPointer(rebasing: token[payloadStart..<(signatureStart - 1)]),
            UnsafeRawBufferPointer(rebasing: token[signatureStart...])
        )
    }

    /// Whether splitting on the byte "." splits on the character ".": in ASCII every byte is a character.
    private static func isASCII(_ bytes: UnsafeRawBufferPointer) -> Bool {
        guard let base = bytes.baseAddress else { return true }
        var index = 0
        var seen: UInt64 = 0
        while index + 8 <= bytes.count {
            seen |= base.loadUnaligned(fromByteOffset: index, as: UInt64.self)
            index += 8
        }
        while index < bytes.count {
            seen |= UInt64(base.load(fromByteOffset: index, as: UInt8.self))
            index += 1
        }
        return seen & 0x8080_8080_8080_8080 == 0
    }

    /// The header's `alg`; the header must be a JSON object.
    private func algorithm(_ header: UnsafeRawBufferPointer) -> Result<HMACAlgorithm, TokenError> {
        for known in signerHeaders where known.segment.count == header.count {
            if known.segment.withUnsafeBytes({ memcmp($0.baseAddress!, header.baseAddress!, header.count) }) == 0 {
                return .success(known.algorithm)
            }
        }
        guard let bytes = Base64URL.decode(header) else { return .failure(.malformed("bad header")) }
        return TokenJSON.algorithm(inHeader: bytes)
    }

    /// Nil when `signature` is the MAC of `signingInput`.
    private func check(
        _ signature: UnsafeRawBufferPointer, of signingInput: UnsafeRawBufferPointer, algorithm: HMACAlgorithm
    ) -> TokenError? {
        guard let count = Base64URL.decodedCount(signature.count) else { return .malformed("bad signature encoding") }
        // Another length is refused all the same once its encoding is checked; the length is public, so
        // deciding by it alone to compute no MAC tells a forger nothing.
        guard count == algorithm.digestSize else {
            return Base64URL.decode(signature) == nil ? .malformed("bad signature encoding") : .invalidSignature
        }
        return withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 2 * 64) { buffer in
            let decoded = buffer.baseAddress!
            let expected = decoded + 64
            guard Base64URL.decode(signature, into: decoded) else { return .malformed("bad signature encoding") }
            key(for: algorithm).authenticate(signingInput, into: expected)
            return CSystem_memcmp_consttime(decoded, expected, count) == 0 ? nil : .invalidSignature
        }
    }

    /// The claims, if they hold at `now`.
    private static func checkTimes(of claims: Claims, now: Double) -> Result<Claims, TokenError> {
        if let exp = claims.expiresAt, now >= exp { return .failure(.expired) }
        if let nbf = claims.notBefore, now < nbf { return .failure(.notYetValid) }
        if let iat = claims.issuedAt, now < iat { return .failure(.issuedInFuture) }
        return .success(claims)
    }

    private func key(for algorithm: HMACAlgorithm) -> HMACKey {
        switch algorithm {
        case .hs256: hs256
        case .hs384: hs384
        case .hs512: hs512
        }
    }
}
