import Testing
@testable import Philote

private func encode(_ bytes: [UInt8]) -> String { bytes.withUnsafeBytes { Base64.encode($0) } }

@Suite struct Base64Tests {
    // RFC 4648 section 10 test vectors.
    static let vectors: [(String, String)] = [
        ("", ""), ("f", "Zg=="), ("fo", "Zm8="), ("foo", "Zm9v"), ("foob", "Zm9vYg=="), ("fooba", "Zm9vYmE="),
        ("foobar", "Zm9vYmFy"),
    ]

    @Test func rfc4648Vectors() {
        for (plain, encoded) in Self.vectors {
            #expect(encode(Array(plain.utf8)) == encoded, "\(plain)")
            #expect(Base64.decode(encoded) == Array(plain.utf8), "\(encoded)")
        }
    }

    @Test func rfc6455SampleKeyIsSixteenBytes() {
        #expect(Base64.decode("dGhlIHNhbXBsZSBub25jZQ==") == Array("the sample nonce".utf8))
        #expect(encode(Array("the sample nonce".utf8)) == "dGhlIHNhbXBsZSBub25jZQ==")
    }

    @Test func fullAlphabet() {
        let bytes: [UInt8] = [0x00, 0x10, 0x83, 0x10, 0x51, 0x87, 0x20, 0x92, 0x8B, 0x30, 0xD3, 0x8F, 0x41, 0x14, 0x93,
                              0x51, 0x55, 0x97, 0x61, 0x96, 0x9B, 0x71, 0xD7, 0x9F, 0x82, 0x18, 0xA3, 0x92, 0x59, 0xA7,
                              0xA2, 0x9A, 0xAB, 0xB2, 0xDB, 0xAF, 0xC3, 0x1C, 0xB3, 0xD3, 0x5D, 0xB7, 0xE3, 0x9E, 0xBB,
                              0xF3, 0xDF, 0xBF]
        let alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
        #expect(encode(bytes) == alphabet)
        #expect(Base64.decode(alphabet) == bytes)
    }

    @Test func roundTripsRandomBytesOfEveryLength() {
        var generator = SeededGenerator(seed: 64)
        for length in 0..<100 {
            let bytes = (0..<length).map { _ in UInt8.random(in: 0...255, using: &generator) }
            let text = encode(bytes)
            #expect(text.utf8.count == 4 * ((length + 2) / 3))
            #expect(Base64.decode(text) == bytes, "length \(length)")
        }
    }

    @Test(arguments: [
        "Z", "Zg", "Zg=", "Zm9", "Zm9vY",  // length not a multiple of 4
        "Zg==Zg==", "Z===", "====", "=Zg=", "Z=g=", "Zm=v",  // padding misplaced
        "Zh==", "Zm9=",  // non-canonical: bits under the padding are not zero
        "Zm9v\n", "Zm 9v", "Zm9-", "Zm9_", "Zm9v\0\0\0\0", "Zmé",  // outside the alphabet
    ])
    func strictDecodingRefuses(_ text: String) {
        #expect(Base64.decode(text) == nil, "\(text.debugDescription)")
    }

    @Test func decodesSubstrings() {
        let text = "xxZm9vYmFyxx"
        let inner = text.dropFirst(2).dropLast(2)
        #expect(Base64.decode(inner) == Array("foobar".utf8))
    }
}
