import Testing

@testable import Philote

private let clientRules = ClientMessageReader.rules

/// Runs `body` on a reader over `bytes`; the failure, if any, comes back as a value.
private func reading<T>(
    _ bytes: [UInt8], rules: JSONReader.Rules = .strict(),
    _ body: (inout JSONReader) throws -> T
) -> Result<T, JSONReader.Failure> {
    bytes.withUnsafeBytes { input in
        var reader = JSONReader(input, rules: rules)
        do {
            return .success(try body(&reader))
        } catch let failure as JSONReader.Failure {
            return .failure(failure)
        } catch {
            preconditionFailure("the reader threw \(error)")
        }
    }
}

private func reading<T>(
    _ text: String, rules: JSONReader.Rules = .strict(),
    _ body: (inout JSONReader) throws -> T
) -> Result<T, JSONReader.Failure> {
    reading(Array(text.utf8), rules: rules, body)
}

/// The whole document skipped, then its end.
private func skipAll(_ reader: inout JSONReader) throws {
    try reader.skipValue()
    try reader.finish()
}

/// The one string that is the whole document, as bytes.
private func string(_ bytes: [UInt8], rules: JSONReader.Rules = .strict()) -> Result<[UInt8], JSONReader.Failure> {
    reading(bytes, rules: rules) { reader in
        let value = try reader.readStringBytes()
        try reader.finish()
        return value
    }
}

private func failure<T>(_ result: Result<T, JSONReader.Failure>) -> JSONReader.Failure? {
    if case .failure(let failure) = result { return failure }
    return nil
}

@Suite struct JSONReaderTests {
    @Test func readsEveryKindOfToken() throws {
        let document = #" { "s" : "text", "n": -12.5e1, "i": 42, "t": true, "f": false, "z": null, "a": [1, "x"], "o": {} } "#
        let result = reading(document) { reader in
            var seen: [String] = []
            #expect(reader.peekValueKind() == .object)
            #expect(try reader.beginObject())
            repeat {
                let key = try reader.readKey()
                seen.append(key)
                switch key {
                case "s": #expect(try reader.readString() == "text")
                case "n": #expect(try reader.readNumber() == JSONNumber(value: -125, isInteger: false))
                case "i": #expect(try reader.readNumber() == JSONNumber(value: 42, isInteger: true))
                case "t": #expect(try reader.readBool() == true)
                case "f": #expect(try reader.readBool() == false)
                case "z": try reader.readNull()
                case "a":
                    #expect(reader.peekValueKind() == .array)
                    #expect(try reader.beginArray())
                    #expect(try reader.readNumber().value == 1)
                    #expect(try reader.nextElement())
                    #expect(try reader.readString() == "x")
                    #expect(try reader.nextElement() == false)
                case "o":
                    #expect(try reader.beginObject() == false)
                    #expect(reader.depth == 1)
                default: Issue.record("unexpected key \(key)")
                }
            } while try reader.nextMember()
            #expect(reader.depth == 0)
            try reader.finish()
            return seen
        }
        #expect(try result.get() == ["s", "n", "i", "t", "f", "z", "a", "o"])
    }

    @Test func peeksEachKindByItsFirstByte() throws {
        let kinds: [(String, JSONReader.ValueKind?)] = [
            ("{", .object), ("[", .array), ("\"", .string), ("-", .number), ("7", .number), ("t", .bool),
            ("f", .bool), ("n", .null), ("x", nil), ("", nil), ("  \n", nil), ("+1", nil),
        ]
        for (text, kind) in kinds {
            #expect(try reading(text) { reader in reader.peekValueKind() }.get() == kind, "\(text)")
        }
    }

    @Test func asksForAKindAndGetsAnother() {
        #expect(failure(reading("1") { reader in try reader.readString() })?.kind == .expected(.string))
        #expect(failure(reading("\"x\"") { reader in try reader.beginObject() })?.kind == .expected(.object))
        #expect(failure(reading(" ") { reader in try reader.readNumber() })?.kind == .unexpectedEnd)
        #expect(failure(reading("?") { reader in try reader.expectValue() })?.kind == .unexpectedCharacter)
    }

    @Test func decodesEveryEscape() throws {
        let text = #""q\" b\\ s\/ \b\f\n\r\t \u0041\u00e9\u20AC \ud83d\ude00""#
        #expect(try string(Array(text.utf8)).get() == Array("q\" b\\ s/ \u{8}\u{C}\n\r\t Aé€ 😀".utf8))
    }

    @Test func replacesLoneSurrogatesAsGoDoes() throws {
        #expect(try string(Array(#""\ud800x""#.utf8)).get() == Array("\u{FFFD}x".utf8))
        #expect(try string(Array(#""\udc00""#.utf8)).get() == Array("\u{FFFD}".utf8))
        // A high surrogate followed by an escape that is no low surrogate: each stands alone.
        #expect(try string(Array(#""\ud83d\u0041""#.utf8)).get() == Array("\u{FFFD}A".utf8))
        #expect(try string(Array(#""\ud83d\ud83d\ude00""#.utf8)).get() == Array("\u{FFFD}😀".utf8))
    }

    @Test func refusesBadEscapesWhereTheyAre() {
        #expect(failure(string(Array(#""\x""#.utf8))) == JSONReader.Failure(kind: .invalidEscape, offset: 3))
        #expect(failure(string(Array(#""\u12G4""#.utf8))) == JSONReader.Failure(kind: .invalidUnicodeEscape, offset: 3))
        #expect(failure(string(Array(#""\u12"#.utf8))) == JSONReader.Failure(kind: .invalidUnicodeEscape, offset: 3))
        #expect(failure(string(Array(#""ab\"#.utf8))) == JSONReader.Failure(kind: .unterminatedEscape, offset: 4))
        #expect(failure(string(Array(#""ab"#.utf8))) == JSONReader.Failure(kind: .unterminatedString, offset: 3))
        #expect(failure(string([0x22, 0x61, 0x09, 0x22])) == JSONReader.Failure(kind: .controlCharacter, offset: 2))
    }

    @Test func handsOutAStringWithoutEscapesInPlace() throws {
        let bytes = Array(#"["plain", "esc\n"]"#.utf8)
        try bytes.withUnsafeBytes { input in
            var reader = JSONReader(input, rules: .strict())
            #expect(try reader.beginArray())
            let inPlace = try reader.withNextString { $0.baseAddress == input.baseAddress! + 2 && $0.count == 5 }
            #expect(inPlace)
            #expect(try reader.nextElement())
            #expect(try reader.withNextString { Array($0) } == Array("esc\n".utf8))
            #expect(try reader.nextElement() == false)
        }
    }

    /// Each class of invalid UTF-8, inside a string after "a": refused (strict) where it is found, or replaced
    /// with U+FFFD (client-message rules).
    @Test(arguments: [
        ([0xFF], 2, "a\u{FFFD}"),  // a byte that is never UTF-8
        ([0x80], 2, "a\u{FFFD}"),  // a continuation byte with no lead
        ([0xC0, 0x80], 2, "a\u{FFFD}\u{FFFD}"),  // an overlong lead
        ([0xE0, 0x80, 0x80], 3, "a\u{FFFD}\u{FFFD}\u{FFFD}"),  // an overlong three-byte form
        ([0xED, 0xA0, 0x80], 3, "a\u{FFFD}\u{FFFD}\u{FFFD}"),  // a surrogate
        ([0xF4, 0x90, 0x80, 0x80], 3, "a\u{FFFD}\u{FFFD}\u{FFFD}\u{FFFD}"),  // above U+10FFFF
        ([0xE2, 0x41], 3, "a\u{FFFD}A"),  // a lead without its continuation
        ([0xE2, 0x82], 5, "a\u{FFFD}"),  // cut short by the closing quote: refused just after it
    ] as [([UInt8], Int, String)])
    func invalidUTF8(_ inside: [UInt8], _ offset: Int, _ replaced: String) throws {
        let document = [0x22, 0x61] + inside + [0x22]
        #expect(failure(string(document)) == JSONReader.Failure(kind: .invalidUTF8, offset: offset))
        #expect(try string(document, rules: clientRules).get() == Array(replaced.utf8))
    }

    @Test func anEscapeInsideACharacterIsInvalidUTF8() throws {
        let document: [UInt8] = [0x22, 0xE2, 0x82, 0x5C, 0x6E, 0xAC, 0x22]  // "E2 82 \n AC"
        #expect(failure(string(document)) == JSONReader.Failure(kind: .invalidUTF8, offset: 4))
        #expect(try string(document, rules: clientRules).get() == Array("\u{FFFD}\n\u{FFFD}".utf8))
        #expect(try string(Array(#""€\n€""#.utf8)).get() == Array("€\n€".utf8))
    }

    @Test func aControlCharacterInsideACharacterIsAControlCharacter() {
        #expect(failure(string([0x22, 0xE2, 0x01, 0x22])) == JSONReader.Failure(kind: .controlCharacter, offset: 2))
    }

    @Test func readsLongStringsEightBytesAtATime() throws {
        // Every position of a special byte relative to the eight-byte words, and non-ASCII among ASCII.
        for length in 0..<40 {
            let body = String(repeating: "x", count: length)
            #expect(try string(Array("\"\(body)\"".utf8)).get() == Array(body.utf8))
            #expect(try string(Array("\"\(body)\\n\(body)é\"".utf8)).get() == Array("\(body)\n\(body)é".utf8))
            #expect(failure(string(Array("\"\(body)\u{1}\"".utf8))) == JSONReader.Failure(kind: .controlCharacter, offset: 1 + length))
            #expect(failure(string([0x22] + Array(body.utf8) + [0xFF, 0x22])) == JSONReader.Failure(kind: .invalidUTF8, offset: 1 + length))
        }
    }

    @Test func readsNumbers() throws {
        let numbers: [(String, Double, Bool)] = [
            ("0", 0, true), ("-0", -0.0, true), ("123456789012345", 123_456_789_012_345, true),
            ("12345678901234567890", 12_345_678_901_234_567_890, true), ("1.5", 1.5, false), ("1e3", 1000, false),
            ("1E+3", 1000, false), ("25e-1", 2.5, false), ("-0.0", -0.0, false),
        ]
        for (text, value, isInteger) in numbers {
            let read = try reading(text) { reader in try reader.readNumber() }.get()
            #expect(read == JSONNumber(value: value, isInteger: isInteger), "\(text)")
        }
        for text in ["-", "1.", "1e", "1e+", "-x", ".5"] {
            #expect(failure(reading(text, skipAll)) != nil, "\(text)")
        }
        // A leading zero stands alone: the `1` of `01` is what follows the number.
        #expect(failure(reading("01", skipAll)) == JSONReader.Failure(kind: .trailingData, offset: 1))
        #expect(failure(reading("1.x", skipAll)) == JSONReader.Failure(kind: .invalidNumber, offset: 2))
    }

    @Test func numbersOutOfRangeAreRefusedWhenReadAndSkippedOnlyUnderClientRules() {
        #expect(failure(reading("[1e999]", skipAll)) == JSONReader.Failure(kind: .numberOutOfRange, offset: 6))
        #expect(failure(reading("1e999") { reader in try reader.readNumber() })?.kind == .numberOutOfRange)
        #expect(failure(reading("[1e999]", rules: clientRules, skipAll)) == nil)
    }

    @Test func literalsFailAtTheFirstWrongByte() {
        #expect(failure(reading("tru", skipAll)) == JSONReader.Failure(kind: .invalidLiteral, offset: 3))
        #expect(failure(reading("nuLl", skipAll)) == JSONReader.Failure(kind: .invalidLiteral, offset: 2))
        #expect(failure(reading("falsy", skipAll)) == JSONReader.Failure(kind: .invalidLiteral, offset: 4))
    }

    @Test func structuralFailures() {
        let cases: [(String, JSONReader.Failure.Kind, Int)] = [
            ("", .unexpectedEnd, 0), ("  ", .unexpectedEnd, 2), ("{", .expectedKey, 1), ("{\"a\" 1}", .expectedColon, 5),
            ("{\"a\":1", .unterminatedObject, 6), ("{\"a\":1 2}", .expectedCommaOrBrace, 7), ("{\"a\":1,}", .expectedKey, 7),
            ("[1", .unterminatedArray, 2), ("[1 2]", .expectedCommaOrBracket, 3), ("[1,]", .unexpectedCharacter, 3),
            ("{} x", .trailingData, 3), ("[]]", .trailingData, 2), ("{a:1}", .expectedKey, 1),
        ]
        for (text, kind, offset) in cases {
            #expect(failure(reading(text, skipAll)) == JSONReader.Failure(kind: kind, offset: offset), "\(text)")
        }
    }

    @Test func whitespaceIsSpaceTabNewlineAndReturnOnly() throws {
        #expect(throws: Never.self) { try reading(" \t\n\r{ \t\n\r\"a\" \t\n\r: \t\n\r[ 1 , 2 ] \t\n\r} \t\n\r", skipAll).get() }
        #expect(failure(reading("\u{0B}{}", skipAll))?.kind == .unexpectedCharacter)
        #expect(failure(reading("{}\u{C}", skipAll))?.kind == .trailingData)
    }

    @Test func strictNestingCountsOpenContainers() {
        let limit = JSONReader.Rules.strict(maxDepth: 4)
        #expect(failure(reading("[[[[1]]]]", rules: limit, skipAll)) == nil)
        #expect(failure(reading("[[[[{}]]]]", rules: limit, skipAll)) == JSONReader.Failure(kind: .nestingTooDeep, offset: 4))
    }

    @Test func clientNestingCountsEveryValue() {
        // Under the client rules (64) the limit is on values inside containers: 64 arrays inside the message
        // object may hold nothing, 63 may hold a value.
        func nested(_ arrays: Int, _ inner: String) -> String {
            "{\"x\":" + String(repeating: "[", count: arrays) + inner + String(repeating: "]", count: arrays) + "}"
        }
        #expect(failure(reading(nested(64, ""), rules: clientRules, skipAll)) == nil)
        #expect(failure(reading(nested(63, "1"), rules: clientRules, skipAll)) == nil)
        #expect(failure(reading(nested(64, "1"), rules: clientRules, skipAll))?.kind == .nestingTooDeep)
        #expect(failure(reading(nested(65, ""), rules: clientRules, skipAll))?.kind == .nestingTooDeep)
        // Checked before the value is looked at: a cut-off document that deep is too deep, not cut off.
        #expect(failure(reading(nested(64, "\"").dropLast(65).description, rules: clientRules, skipAll))?.kind == .nestingTooDeep)
    }

    @Test func skipsNestedValuesAndStopsAfterThem() throws {
        let document = #"{"skip": {"a": [1, {"b": [true, null, "x\"]"]}], "c": {}}, "keep": "yes"}"#
        let kept = try reading(document) { reader -> String in
            var kept = ""
            #expect(try reader.beginObject())
            repeat {
                if try reader.readKey() == "keep" { kept = try reader.readString() } else { try reader.skipValue() }
                #expect(reader.depth == 1)
            } while try reader.nextMember()
            try reader.finish()
            return kept
        }.get()
        #expect(kept == "yes")
    }

    /// Every proper prefix of a document that uses every construct is refused, under both rule sets, and
    /// never read past its end (the sanitizer builds would catch that); the whole document is accepted.
    @Test func refusesTheDocumentCutAtEveryByte() {
        let document = Array(#" {"s": "a\"\u00e9\ud83d\ude00 é", "n": [-1.5e+3, 0, 12], "l": [true, false, null], "o": {"e": {}, "f": []}} "#.utf8)
        for rules in [JSONReader.Rules.strict(), clientRules] {
            #expect(failure(reading(document, rules: rules, skipAll)) == nil)
            for length in 0..<(document.count - 1) {
                let prefix = Array(document[..<length])
                let refused = failure(reading(prefix, rules: rules, skipAll))
                #expect(refused != nil, "accepted the first \(length) bytes")
                #expect(refused.map { $0.offset <= length } ?? true)
            }
        }
    }

    @Test func theReasonsAreTheDocumentParsersWords() {
        #expect(JSONReader.Failure(kind: .trailingData, offset: 0).reason == "unexpected data after the value")
        #expect(JSONReader.Failure(kind: .invalidUTF8, offset: 0).reason == "invalid UTF-8 in string")
        #expect(JSONReader.Failure(kind: .expected(.object), offset: 0).reason == "expected an object")
        #expect(JSONReader.Failure(kind: .expected(.string), offset: 0).reason == "expected a string")
    }
}
