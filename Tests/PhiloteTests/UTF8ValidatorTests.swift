import Testing
import Philote

/// Validates `bytes` in one call; returns (no invalid byte seen, ends on a character boundary).
private func check(_ bytes: [UInt8]) -> (valid: Bool, complete: Bool) {
    var validator = UTF8Validator()
    let valid = validator.validate(bytes)
    return (valid, validator.isComplete)
}

/// The index of the byte at which byte-by-byte feeding first fails, or nil.
private func failingIndex(_ bytes: [UInt8]) -> Int? {
    var validator = UTF8Validator()
    for (index, byte) in bytes.enumerated() where !validator.validate([byte]) {
        return index
    }
    return nil
}

@Suite struct UTF8ValidatorTests {
    static let validSamples: [[UInt8]] = [
        [],
        Array("Hello"),
        Array("κόσμε"),  // the classic UTF-8 test word
        Array("Hello-µ@ßöäüàá-UTF-8!!"),
        Array("€"), Array("𝄞"), Array("日本語のテキスト"),
        [0x00], [0x7F],  // U+0000, U+007F
        [0xC2, 0x80], [0xDF, 0xBF],  // U+0080, U+07FF
        [0xE0, 0xA0, 0x80], [0xEF, 0xBF, 0xBF],  // U+0800, U+FFFF
        [0xED, 0x9F, 0xBF], [0xEE, 0x80, 0x80],  // U+D7FF, U+E000 (either side of the surrogates)
        [0xF0, 0x90, 0x80, 0x80], [0xF4, 0x8F, 0xBF, 0xBF],  // U+10000, U+10FFFF
        [0xEF, 0xBB, 0xBF],  // a BOM is a valid character
        Array(String(repeating: "a", count: 37) + "é" + String(repeating: "b", count: 19) + "𝄞z"),
    ]

    @Test(arguments: validSamples)
    func validInputIsAccepted(_ bytes: [UInt8]) {
        let result = check(bytes)
        #expect(result.valid && result.complete)
    }

    @Test(arguments: validSamples)
    func validInputSplitAtEveryBytePosition(_ bytes: [UInt8]) {
        for split in 0...bytes.count {
            var validator = UTF8Validator()
            do { let ok = validator.validate(Array(bytes[..<split])); #expect(ok, "split \(split)") }
            do { let ok = validator.validate(Array(bytes[split...])); #expect(ok, "split \(split)") }
            #expect(validator.isComplete, "split \(split)")
        }
        var validator = UTF8Validator()
        for byte in bytes {
            let ok = validator.validate([byte])
            #expect(ok)
        }
        #expect(validator.isComplete)
    }

    static let invalidSamples: [(name: String, bytes: [UInt8], failsAt: Int)] = [
        ("lone continuation 0x80", [0x41, 0x80], 1),
        ("lone continuation 0xBF", [0xBF], 0),
        ("overlong NUL C0 80", [0xC0, 0x80], 0),
        ("overlong C1 BF", [0xC1, 0xBF], 0),
        ("overlong 3-byte E0 80 80", [0xE0, 0x80, 0x80], 1),
        ("overlong 3-byte E0 9F BF", [0xE0, 0x9F, 0xBF], 1),
        ("overlong 4-byte F0 80 80 80", [0xF0, 0x80, 0x80, 0x80], 1),
        ("overlong 4-byte F0 8F BF BF", [0xF0, 0x8F, 0xBF, 0xBF], 1),
        ("surrogate U+D800", [0xED, 0xA0, 0x80], 1),
        ("surrogate U+DFFF", [0xED, 0xBF, 0xBF], 1),
        ("surrogate pair as CESU-8", [0xED, 0xA0, 0xBD, 0xED, 0xB2, 0x8A], 1),
        ("U+110000", [0xF4, 0x90, 0x80, 0x80], 1),
        ("F5 lead byte", [0xF5, 0x80, 0x80, 0x80], 0),
        ("F8 5-byte lead", [0xF8, 0x88, 0x80, 0x80, 0x80], 0),
        ("FC 6-byte lead", [0xFC, 0x84, 0x80, 0x80, 0x80, 0x80], 0),
        ("FE", [0xFE], 0),
        ("FF", [0xFF], 0),
        ("2-byte lead then ASCII", [0xC3, 0x41], 1),
        ("3-byte lead, one tail, then ASCII", [0xE2, 0x82, 0x41], 2),
        ("4-byte lead, two tails, then a new lead", [0xF0, 0x9F, 0x98, 0xF0], 3),
        ("Autobahn 6.4.1 fail-fast", [0xCE, 0xBA, 0xE1, 0xBD, 0xB9, 0xCF, 0x83, 0xCE, 0xBC, 0xCE, 0xB5, 0xF4, 0x90, 0x80, 0x80, 0x65, 0x64, 0x69, 0x74, 0x65, 0x64], 12),
    ]

    @Test(arguments: 0..<21)
    func invalidInputIsRefusedAtTheFirstBadByte(_ index: Int) {
        let (name, bytes, failsAt) = Self.invalidSamples[index]
        #expect(!check(bytes).valid, "\(name)")
        #expect(failingIndex(bytes) == failsAt, "\(name)")
        // Fail-fast: the prefix before the bad byte is still acceptable (possibly incomplete).
        #expect(check(Array(bytes[..<failsAt])).valid, "\(name)")
        // The same, after ASCII runs long enough to take the eight-byte fast path.
        for lead in [1, 7, 8, 9, 16, 23] {
            let prefixed = Array(repeating: UInt8(0x61), count: lead) + bytes
            #expect(!check(prefixed).valid, "\(name) after \(lead) ASCII bytes")
            #expect(failingIndex(prefixed) == failsAt + lead, "\(name) after \(lead) ASCII bytes")
        }
    }

    @Test func invalidByteAtEveryPositionOfALongASCIIRun() {
        for length in 1..<40 {
            for position in 0..<length {
                var bytes = Array(repeating: UInt8(0x20), count: length)
                bytes[position] = 0xFF
                #expect(!check(bytes).valid, "length \(length) position \(position)")
            }
        }
    }

    @Test(arguments: [
        [UInt8(0xC3)], [0xE2], [0xE2, 0x82], [0xF0], [0xF0, 0x9F], [0xF0, 0x9F, 0x98],
        Array("abc") + [0xE2, 0x82],
    ])
    func truncatedInputIsValidSoFarButIncomplete(_ bytes: [UInt8]) {
        let result = check(bytes)
        #expect(result.valid)
        #expect(!result.complete)
    }

    @Test func rejectionIsSticky() {
        var validator = UTF8Validator()
        do { let ok = validator.validate([0xFF]); #expect(!ok) }
        do { let ok = validator.validate(Array("plain ASCII")); #expect(!ok) }
        do { let ok = validator.validate([]); #expect(!ok) }
        #expect(!validator.isComplete)
    }

    @Test func emptyInputKeepsState() {
        var validator = UTF8Validator()
        do { let ok = validator.validate([0xE2]); #expect(ok) }
        do { let ok = validator.validate([]); #expect(ok) }
        do { let ok = validator.validate(UnsafeRawBufferPointer(start: nil, count: 0)); #expect(ok) }
        #expect(!validator.isComplete)
        do { let ok = validator.validate([0x82, 0xAC]); #expect(ok) }
        #expect(validator.isComplete)
    }

    /// Differential check against the standard library's strict UTF-8 decoding on random byte strings
    /// biased toward the interesting lead and continuation bytes.
    @Test func agreesWithTheStandardLibraryOnRandomInput() {
        var generator = SeededGenerator(seed: 0xC0FFEE)
        let interesting: [UInt8] = [0x00, 0x41, 0x7F, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xC0, 0xC1, 0xC2, 0xDF,
                                    0xE0, 0xE1, 0xEC, 0xED, 0xEE, 0xEF, 0xF0, 0xF1, 0xF3, 0xF4, 0xF5, 0xFF]
        for _ in 0..<20_000 {
            let length = Int.random(in: 0...12, using: &generator)
            let bytes = (0..<length).map { _ in
                Bool.random(using: &generator)
                    ? interesting.randomElement(using: &generator)!
                    : UInt8.random(in: 0...255, using: &generator)
            }
            let expected = String(validating: bytes, as: UTF8.self) != nil
            let result = check(bytes)
            #expect((result.valid && result.complete) == expected, "\(bytes)")
            // Split anywhere, the verdict is the same.
            let split = Int.random(in: 0...length, using: &generator)
            var validator = UTF8Validator()
            let ok = validator.validate(Array(bytes[..<split])) && validator.validate(Array(bytes[split...]))
            #expect((ok && validator.isComplete) == expected, "\(bytes) split at \(split)")
        }
    }
}
