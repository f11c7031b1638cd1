import Testing

@testable import Philote

@Suite struct TokenVerifierTests {
    let verifier = TokenVerifier(secret: "test-secret")
    let signer = TokenSigner(secret: "test-secret")
    let now: Double = 1_800_000_000

    @Test func anEmptySegmentDecodesToNothingAndAnImpossibleLengthToNil() {
        #expect(Base64URL.decode("") == [])
        #expect(Base64URL.decode("A") == nil)
        #expect(Base64URL.decode("QQ") == [0x41])
    }

    @Test func verifiesTheWellKnownHS256Example() throws {
        // The HS256 example token of RFC 7519's ecosystem (jwt.io), signed with "your-256-bit-secret".
        let token =
            "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
        let claims = try TokenVerifier(secret: "your-256-bit-secret").verify(token, now: now).get()
        #expect(claims.issuedAt == 1_516_239_022)
        #expect(claims.read.isEmpty && claims.write.isEmpty && !claims.api)
        #expect(TokenVerifier(secret: "other").verify(token, now: now) == .failure(.invalidSignature))
    }

    @Test(arguments: HMACAlgorithm.allCases)
    func roundTripsEveryAlgorithm(_ algorithm: HMACAlgorithm) throws {
        var claims = Claims(read: ["a", "b"], write: ["c"], api: true, expiresAt: now + 60)
        claims.issuedAt = now - 1
        let token = TokenSigner(secret: "test-secret", algorithm: algorithm).sign(claims)
        #expect(try verifier.verify(token, now: now).get() == claims)
    }

    @Test func refusesNoneAndAsymmetricAlgorithms() {
        let payload = Base64URL.encode(Array(#"{"read":["a"]}"#.utf8))
        for alg in ["none", "RS256", "ES256", "PS256", "hs256", "HS1"] {
            let header = Base64URL.encode(Array(#"{"alg":"\#(alg)","typ":"JWT"}"#.utf8))
            #expect(verifier.verify("\(header).\(payload).", now: now) == .failure(.unsupportedAlgorithm))
        }
        let missing = Base64URL.encode(Array(#"{"typ":"JWT"}"#.utf8))
        #expect(verifier.verify("\(missing).\(payload).", now: now) == .failure(.unsupportedAlgorithm))
    }

    @Test func refusesATamperedPayload() {
        let token = signer.sign(Claims(read: ["a"]))
        let parts = token.split(separator: ".")
        let forged = Base64URL.encode(Array(#"{"read":["a","admin"]}"#.utf8))
        #expect(verifier.verify("\(parts[0]).\(forged).\(parts[2])", now: now) == .failure(.invalidSignature))
        // A signature of the wrong length for the algorithm is refused the same way.
        #expect(verifier.verify("\(parts[0]).\(parts[1]).AAAA", now: now) == .failure(.invalidSignature))
    }

    @Test func refusesMalformedTokens() {
        for token in ["", "a", "a.b", "a.b.c.d", "!!.e30.", "e30.e30", "bm90IGpzb24.e30.AAAA"] {
            guard case .failure(let error) = verifier.verify(token, now: now) else {
                Issue.record("accepted \(token)")
                continue
            }
            #expect(error != .expired)
        }
    }

    @Test func splitsOnlyOnADotThatIsACharacterOfItsOwn() {
        let parts = signer.sign(Claims(read: ["a"])).split(separator: ".")
        // U+0301 (combining acute accent) joins the dot before it into one character: two segments.
        #expect(verifier.verify("\(parts[0]).\u{301}\(parts[1]).\(parts[2])", now: now) == .failure(.malformed("expected three segments")))
        #expect(verifier.verify("\(parts[0]).\(parts[1]).\(parts[2])\u{301}", now: now) == .failure(.malformed("bad signature encoding")))
        #expect(verifier.verify("\(parts[0]).\(parts[1])é.\(parts[2])", now: now) == .failure(.invalidSignature))
        #expect(verifier.verify("\(parts[0])...\(parts[2])", now: now) == .failure(.malformed("expected three segments")))
        #expect(verifier.verify(parts.joined(separator: ".").dropFirst(0), now: now).map(\.read) == .success(["a"]))
    }

    @Test func checksTheSignatureEncodingAtEveryLength() {
        let parts = signer.sign(Claims(read: ["a"])).split(separator: ".")
        let input = "\(parts[0]).\(parts[1])"
        #expect(verifier.verify("\(input).\(parts[2].dropLast(3))", now: now) == .failure(.invalidSignature))
        #expect(verifier.verify("\(input).\(parts[2].dropLast())B", now: now) == .failure(.malformed("bad signature encoding")))
        #expect(verifier.verify("\(input).\(parts[2].dropLast())!", now: now) == .failure(.malformed("bad signature encoding")))
        #expect(verifier.verify("\(input).\(parts[2])=", now: now) == .failure(.malformed("bad signature encoding")))
        #expect(verifier.verify("\(input).AAAAA", now: now) == .failure(.malformed("bad signature encoding")))
        #expect(verifier.verify("\(input).AA+A", now: now) == .failure(.malformed("bad signature encoding")))
        #expect(verifier.verify("\(input).", now: now) == .failure(.invalidSignature))
    }

    @Test func readsHeadersOtherLibrariesWrite() throws {
        let payload = Base64URL.encode(Array(#"{"read":["a"]}"#.utf8))
        for header in [#"{"typ":"JWT","alg":"HS384"}"#, #"{ "alg" : "HS384" }"#, #"{"alg":"HS256","alg":"HS384"}"#] {
            let input = Base64URL.encode(Array(header.utf8)) + "." + payload
            let signature = Base64URL.encode(HMACAlgorithm.hs384.authenticate(Array(input.utf8), key: Array("test-secret".utf8)))
            #expect(try verifier.verify("\(input).\(signature)", now: now).get().read == ["a"], "\(header)")
        }
        for header in [#"[{"alg":"HS256"}]"#, #"{"alg":"HS256""#, ""] {
            let input = Base64URL.encode(Array(header.utf8)) + "." + payload
            #expect(verifier.verify("\(input).AAAA", now: now) == .failure(.malformed("bad header")), "\(header)")
        }
    }

    @Test func keepsEachSecretApartAcrossVerifiersAndThreads() async {
        // Each thread keeps its own copy of every prepared key: more verifiers than it keeps copies of,
        // verifiers dropped and made again (perhaps at the same addresses), and several threads at once.
        let secrets = (0..<5).map { "secret-\($0)" }
        let tokens = secrets.map { secret in
            HMACAlgorithm.allCases.map { TokenSigner(secret: secret, algorithm: $0).sign(Claims(read: [secret])) }
        }
        await withTaskGroup(of: Int.self) { group in
            for _ in 0..<4 {
                group.addTask {
                    var mistakes = 0
                    for round in 0..<20 {
                        let verifiers = secrets.map { TokenVerifier(secret: $0) }
                        for (index, verifier) in verifiers.enumerated() {
                            for (other, tokens) in tokens.enumerated() {
                                for token in tokens {
                                    let result = verifier.verify(token, now: 1_800_000_000)
                                    let expected: Result<Claims, TokenError> =
                                        index == other ? .success(Claims(read: [secrets[index]])) : .failure(.invalidSignature)
                                    if result != expected { mistakes += 1 }
                                }
                            }
                        }
                        if round % 5 == 0 { await Task.yield() }
                    }
                    return mistakes
                }
            }
            #expect(await group.reduce(0, +) == 0)
        }
    }

    @Test func acceptsAnEmptySecret() throws {
        let token = TokenSigner(secret: "").sign(Claims(read: ["a"]))
        #expect(try TokenVerifier(secret: "").verify(token, now: now).get().read == ["a"])
        #expect(verifier.verify(token, now: now) == .failure(.invalidSignature))
    }

    @Test func checksTimesWithoutLeeway() {
        var claims = Claims(expiresAt: now)
        #expect(verifier.verify(signer.sign(claims), now: now) == .failure(.expired))
        claims.expiresAt = now + 1
        #expect((try? verifier.verify(signer.sign(claims), now: now).get()) != nil)
        claims = Claims()
        claims.notBefore = now + 1
        #expect(verifier.verify(signer.sign(claims), now: now) == .failure(.notYetValid))
        claims.notBefore = now
        #expect((try? verifier.verify(signer.sign(claims), now: now).get()) != nil)
        claims = Claims()
        claims.issuedAt = now + 1
        #expect(verifier.verify(signer.sign(claims), now: now) == .failure(.issuedInFuture))
    }

    /// NumericDates may have fractions, and the checks have no leeway: `exp: T + 0.9` is valid until T + 0.9, not
    /// until T (a token was refused, and a connection closed, up to a second early); `nbf` likewise.
    @Test func fractionalTimesAreCheckedToTheFraction() throws {
        var claims = Claims(expiresAt: now + 0.9)
        let expiring = signer.sign(claims)
        #expect(expiring.split(separator: ".").count == 3)
        #expect(try verifier.verify(expiring, now: now).get().expiresAt == now + 0.9)
        #expect((try? verifier.verify(expiring, now: now + 0.89).get()) != nil)
        #expect(verifier.verify(expiring, now: now + 0.9) == .failure(.expired))
        claims = Claims()
        claims.notBefore = now + 0.5
        #expect(verifier.verify(signer.sign(claims), now: now + 0.4) == .failure(.notYetValid))
        #expect((try? verifier.verify(signer.sign(claims), now: now + 0.5).get()) != nil)
        // Whole seconds are written as integers, as other JWT libraries write and read them.
        #expect(TokenSigner.numericDate(1_800_000_060) == "1800000060")
        #expect(TokenSigner.numericDate(1_800_000_060.25) == "1800000060.25")
    }

    @Test func refusesClaimsOfTheWrongType() {
        let header = Base64URL.encode(Array(#"{"alg":"HS256"}"#.utf8))
        func token(_ payload: String) -> String {
            let input = header + "." + Base64URL.encode(Array(payload.utf8))
            return input + "." + Base64URL.encode(HMACAlgorithm.hs256.authenticate(Array(input.utf8), key: Array("test-secret".utf8)))
        }
        #expect(verifier.verify(token(#"{"read":"a"}"#), now: now) == .failure(.invalidClaim("read")))
        #expect(verifier.verify(token(#"{"read":[1]}"#), now: now) == .failure(.invalidClaim("read")))
        #expect(verifier.verify(token(#"{"write":{}}"#), now: now) == .failure(.invalidClaim("write")))
        #expect(verifier.verify(token(#"{"api":"yes"}"#), now: now) == .failure(.invalidClaim("api")))
        #expect(verifier.verify(token(#"{"exp":"soon"}"#), now: now) == .failure(.invalidClaim("exp")))
        #expect(verifier.verify(token(#"{"nbf":true}"#), now: now) == .failure(.invalidClaim("nbf")))
        #expect(verifier.verify(token(#"[1]"#), now: now) == .failure(.malformed("bad payload")))
        // Null and missing lists mean empty; unknown claims are ignored.
        let claims = try? verifier.verify(token(#"{"read":null,"api":null,"sub":7}"#), now: now).get()
        #expect(claims == Claims())
    }
}
