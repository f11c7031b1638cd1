import FuzzSupport
import Philote

#if canImport(Glibc)
    import Glibc
#endif

/// Drives token verification with arbitrary text, and with arbitrary payloads that carry a valid
/// signature (so the claim checks behind the signature are reached too). Any outcome but a crash is fine.
let secret = "fuzz-secret"
let verifier = TokenVerifier(secret: secret)

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    // As a whole token string.
    _ = verifier.verify(String(decoding: bytes, as: UTF8.self), now: 1_800_000_000)
    // As a payload, correctly signed: exercises the JSON parser and claim types.
    let algorithm = HMACAlgorithm.hs256
    let header = Base64URL.encode(Array(#"{"alg":"HS256","typ":"JWT"}"#.utf8))
    let input = header + "." + Base64URL.encode(bytes)
    let token = input + "." + Base64URL.encode(algorithm.authenticate(Array(input.utf8), key: Array(secret.utf8)))
    if case .success(let claims) = verifier.verify(token, now: 1_800_000_000) {
        // Whatever was accepted must round-trip through the signer.
        let again = TokenSigner(secret: secret).sign(claims)
        guard case .success(let reparsed) = verifier.verify(again, now: 1_800_000_000) else {
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
