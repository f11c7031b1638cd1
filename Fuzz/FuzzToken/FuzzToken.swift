import FuzzSupport
import Philote

#if canImport(Glibc)
    import Glibc
#endif

/// Drives token verification with arbitrary text, with arbitrary payloads that carry a valid signature
/// (so the claim checks behind the signature are reached too), and with arbitrary signed headers. Every
/// result must be what `PlainTokenVerifier` gives; any other outcome but a crash is fine.
let secret = "fuzz-secret"
let now: Double = 1_800_000_000
let verifier = TokenVerifier(secret: secret)
let plain = PlainTokenVerifier(secret: secret)

func verify(_ token: String) -> Result<Claims, TokenError> {
    let result = verifier.verify(token, now: now)
    let expected = plain.verify(token, now: now)
    precondition(result == expected, "TokenVerifier: \(result), PlainTokenVerifier: \(expected)")
    return result
}

func signed(header: some Collection<UInt8>, payload: some Collection<UInt8>) -> String {
    let input = Base64URL.encode(header) + "." + Base64URL.encode(payload)
    return input + "." + Base64URL.encode(HMACAlgorithm.hs256.authenticate(Array(input.utf8), key: Array(secret.utf8)))
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    // As a whole token string.
    _ = verify(String(decoding: bytes, as: UTF8.self))
    // As a header and a payload, split at the first newline, signed with HS256: exercises the header checks.
    if let newline = bytes.firstIndex(of: 0x0A) {
        _ = verify(signed(header: bytes[..<newline], payload: bytes[(newline + 1)...]))
    }
    // As a payload, correctly signed: exercises the JSON parser and claim types.
    if case .success(let claims) = verify(signed(header: Array(#"{"alg":"HS256","typ":"JWT"}"#.utf8), payload: bytes)) {
        // Whatever was accepted must round-trip through the signer.
        let again = TokenSigner(secret: secret).sign(claims)
        guard case .success(let reparsed) = verify(again) else {
            preconditionFailure("re-signed claims refused")
        }
        precondition(reparsed.read == claims.read && reparsed.write == claims.write && reparsed.api == claims.api)
    }
    return 0
}

@main
struct FuzzMain {
    static func main() { runFuzzer(fuzz) }
}
