import Testing
@testable import Philote

/// Parses `bytes` with a fresh parser; returns the result and the buffer afterwards (payloads unmasked).
private func parse(
    _ bytes: [UInt8], requireMask: Bool = true, maxPayloadLength: Int = 1 << 20, allowedRSV: UInt8 = 0
) -> (FrameParser.Result, [UInt8]) {
    var parser = FrameParser(maxPayloadLength: maxPayloadLength)
    parser.requireMask = requireMask
    parser.allowedRSV = allowedRSV
    var buffer = bytes
    let result = buffer.withUnsafeMutableBytes { parser.parse($0) }
    return (result, buffer)
}

/// The payload of a parsed frame, or nil if it was not a whole frame.
private func payload(_ result: FrameParser.Result, _ buffer: [UInt8]) -> [UInt8]? {
    guard case .frame(let header) = result else { return nil }
    return Array(buffer[header.headerLength..<header.frameLength])
}

private let hello: [UInt8] = [0x48, 0x65, 0x6c, 0x6c, 0x6f]
private let rfcMask: [UInt8] = [0x37, 0xfa, 0x21, 0x3d]
private let rfcMaskKey = UInt32(0x3d21_fa37)  // the key bytes in wire order, loaded little-endian

// MARK: - RFC 6455 section 5.7 examples

@Suite struct FrameParserRFCExamples {
    @Test func singleFrameUnmaskedText() {
        let bytes: [UInt8] = [0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f]
        let (result, buffer) = parse(bytes, requireMask: false)
        #expect(result == .frame(FrameHeader(fin: true, rsv: 0, opcode: .text, maskKey: nil, payloadLength: 5, headerLength: 2)))
        #expect(payload(result, buffer) == Array("Hello"))
    }

    @Test func singleFrameUnmaskedTextRefusedByServerParser() {
        let (result, _) = parse([0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f])
        #expect(result == .failure(.protocolViolation("client frame not masked")))
    }

    @Test func singleFrameMaskedText() {
        let bytes: [UInt8] = [0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58]
        let (result, buffer) = parse(bytes)
        #expect(result == .frame(FrameHeader(fin: true, rsv: 0, opcode: .text, maskKey: rfcMaskKey, payloadLength: 5, headerLength: 6)))
        #expect(payload(result, buffer) == Array("Hello"))
    }

    @Test func fragmentedUnmaskedText() {
        let first: [UInt8] = [0x01, 0x03, 0x48, 0x65, 0x6c]
        let second: [UInt8] = [0x80, 0x02, 0x6c, 0x6f]
        let (r1, b1) = parse(first, requireMask: false)
        #expect(r1 == .frame(FrameHeader(fin: false, rsv: 0, opcode: .text, maskKey: nil, payloadLength: 3, headerLength: 2)))
        #expect(payload(r1, b1) == Array("Hel"))
        let (r2, b2) = parse(second, requireMask: false)
        #expect(r2 == .frame(FrameHeader(fin: true, rsv: 0, opcode: .continuation, maskKey: nil, payloadLength: 2, headerLength: 2)))
        #expect(payload(r2, b2) == Array("lo"))
    }

    @Test func fragmentsInOneBufferParseOneAtATime() {
        let bytes: [UInt8] = [0x01, 0x03, 0x48, 0x65, 0x6c, 0x80, 0x02, 0x6c, 0x6f]
        let (result, _) = parse(bytes, requireMask: false)
        guard case .frame(let header) = result else {
            Issue.record("expected a frame, got \(result)")
            return
        }
        #expect(header.frameLength == 5)
        let (rest, restBuffer) = parse(Array(bytes[5...]), requireMask: false)
        #expect(payload(rest, restBuffer) == Array("lo"))
    }

    @Test func unmaskedPing() {
        let bytes: [UInt8] = [0x89, 0x05] + hello
        let (result, buffer) = parse(bytes, requireMask: false)
        #expect(result == .frame(FrameHeader(fin: true, rsv: 0, opcode: .ping, maskKey: nil, payloadLength: 5, headerLength: 2)))
        #expect(payload(result, buffer) == Array("Hello"))
    }

    @Test func maskedPong() {
        let bytes: [UInt8] = [0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58]
        let (result, buffer) = parse(bytes)
        #expect(result == .frame(FrameHeader(fin: true, rsv: 0, opcode: .pong, maskKey: rfcMaskKey, payloadLength: 5, headerLength: 6)))
        #expect(payload(result, buffer) == Array("Hello"))
    }

    @Test func binary256BytesUnmasked() {
        let data = (0..<256).map { UInt8(truncatingIfNeeded: $0 &* 7) }
        let bytes: [UInt8] = [0x82, 0x7E, 0x01, 0x00] + data
        let (result, buffer) = parse(bytes, requireMask: false)
        #expect(result == .frame(FrameHeader(fin: true, rsv: 0, opcode: .binary, maskKey: nil, payloadLength: 256, headerLength: 4)))
        #expect(payload(result, buffer) == data)
    }

    @Test func binary256BytesMasked() {
        let data = (0..<256).map { UInt8(truncatingIfNeeded: $0 &* 7) }
        let bytes = clientFrame(0x2, data, mask: rfcMask)
        #expect(Array(bytes[0..<4]) == [0x82, 0xFE, 0x01, 0x00])
        let (result, buffer) = parse(bytes)
        #expect(result == .frame(FrameHeader(fin: true, rsv: 0, opcode: .binary, maskKey: rfcMaskKey, payloadLength: 256, headerLength: 8)))
        #expect(payload(result, buffer) == data)
    }

    @Test func binary64KiBUnmasked() {
        let data = (0..<65536).map { UInt8(truncatingIfNeeded: $0 ^ ($0 >> 8)) }
        let bytes: [UInt8] = [0x82, 0x7F, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00] + data
        let (result, buffer) = parse(bytes, requireMask: false)
        #expect(result == .frame(FrameHeader(fin: true, rsv: 0, opcode: .binary, maskKey: nil, payloadLength: 65536, headerLength: 10)))
        #expect(payload(result, buffer) == data)
    }

    @Test func binary64KiBMasked() {
        let data = (0..<65536).map { UInt8(truncatingIfNeeded: $0 ^ ($0 >> 8)) }
        let bytes = clientFrame(0x2, data, mask: rfcMask)
        #expect(Array(bytes[0..<10]) == [0x82, 0xFF, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00])
        let (result, buffer) = parse(bytes, maxPayloadLength: 65536)
        #expect(result == .frame(FrameHeader(fin: true, rsv: 0, opcode: .binary, maskKey: rfcMaskKey, payloadLength: 65536, headerLength: 14)))
        #expect(payload(result, buffer) == data)
    }
}

// MARK: - Incomplete input

@Suite struct FrameParserIncompleteInput {
    static let frames: [(name: String, bytes: [UInt8], requireMask: Bool)] = [
        ("unmasked text", [0x81, 0x05] + hello, false),
        ("masked text", [0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58], true),
        ("masked pong", [0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58], true),
        ("masked empty close", [0x88, 0x80, 1, 2, 3, 4], true),
        ("masked 256", clientFrame(0x2, Array(repeating: 0xAB, count: 256)), true),
        ("unmasked 256", clientFrame(0x2, Array(repeating: 0xAB, count: 256), mask: nil), false),
        ("masked 65536", clientFrame(0x2, Array(repeating: 0x5A, count: 65536)), true),
        ("unmasked 65536", clientFrame(0x2, Array(repeating: 0x5A, count: 65536), mask: nil), false),
    ]

    /// The frame length the parser can know from a prefix of `count` bytes (nil while the header is partial).
    static func knownLength(_ bytes: [UInt8], prefix count: Int) -> Int? {
        guard count >= 2 else { return nil }
        let short = Int(bytes[1] & 0x7F)
        var header = 2 + (short == 126 ? 2 : short == 127 ? 8 : 0)
        if bytes[1] & 0x80 != 0 { header += 4 }
        guard count >= header else { return nil }
        return bytes.count
    }

    @Test(arguments: 0..<8)
    func everySplitPointIsIncomplete(_ index: Int) {
        let (_, bytes, requireMask) = Self.frames[index]
        // The long frames are checked at every header split and at a spread of payload splits.
        let points = bytes.count <= 300 ? Array(0..<bytes.count) : Array(0..<20) + Array(stride(from: 20, to: bytes.count, by: 997)) + [bytes.count - 1]
        for count in points {
            let prefix = Array(bytes[..<count])
            let (result, after) = parse(prefix, requireMask: requireMask)
            #expect(result == .incomplete(frameLength: Self.knownLength(bytes, prefix: count)), "prefix \(count)")
            #expect(after == prefix, "an incomplete frame must not be unmasked or changed (prefix \(count))")
        }
        let (whole, _) = parse(bytes, requireMask: requireMask)
        guard case .frame(let header) = whole else {
            Issue.record("whole frame did not parse: \(whole)")
            return
        }
        #expect(header.frameLength == bytes.count)
    }

    @Test func emptyBufferIsIncomplete() {
        var parser = FrameParser(maxPayloadLength: 10)
        let result = parser.parse(UnsafeMutableRawBufferPointer(start: nil, count: 0))
        #expect(result == .incomplete(frameLength: nil))
        parser.requireMask = false
        #expect(parser.parse(UnsafeMutableRawBufferPointer(start: nil, count: 0)) == .incomplete(frameLength: nil))
    }

    @Test func extraBytesAfterAFrameAreLeft() {
        let bytes = clientFrame(0x1, Array("Hello")) + [0x81, 0x85, 0x00]
        let (result, _) = parse(bytes)
        guard case .frame(let header) = result else {
            Issue.record("expected a frame")
            return
        }
        #expect(header.frameLength == 11)
    }
}

// MARK: - Header rules

@Suite struct FrameParserHeaderRules {
    @Test(arguments: [UInt8(0x40), 0x20, 0x10, 0x60, 0x70])
    func rsvBitsRefused(_ rsv: UInt8) {
        let (result, _) = parse(clientFrame(0x1, Array("Hello"), rsv: rsv))
        #expect(result == .failure(.protocolViolation("reserved bits set")))
        // Refused from the first two bytes, before the rest arrives.
        let (early, _) = parse([0x81 | rsv, 0x85])
        #expect(early == .failure(.protocolViolation("reserved bits set")))
    }

    @Test func rsvBitAllowedByAnExtension() {
        let (result, buffer) = parse(clientFrame(0x1, Array("Hello"), rsv: 0x40), allowedRSV: FrameHeader.rsv1)
        guard case .frame(let header) = result else {
            Issue.record("expected a frame, got \(result)")
            return
        }
        #expect(header.rsv == FrameHeader.rsv1)
        #expect(payload(result, buffer) == Array("Hello"))
        let (other, _) = parse(clientFrame(0x1, Array("Hello"), rsv: 0x60), allowedRSV: FrameHeader.rsv1)
        #expect(other == .failure(.protocolViolation("reserved bits set")))
    }

    @Test(arguments: [UInt8(0x3), 0x4, 0x5, 0x6, 0x7, 0xB, 0xC, 0xD, 0xE, 0xF])
    func reservedOpcodesRefused(_ opcode: UInt8) {
        let (result, _) = parse(clientFrame(opcode, [1, 2, 3]))
        #expect(result == .failure(.protocolViolation("reserved opcode")))
        let (early, _) = parse([0x80 | opcode, 0x83])
        #expect(early == .failure(.protocolViolation("reserved opcode")))
    }

    @Test(arguments: [UInt8(0x0), 0x1, 0x2, 0x8, 0x9, 0xA])
    func definedOpcodesAccepted(_ opcode: UInt8) {
        let (result, _) = parse(clientFrame(opcode, opcode == 0x8 ? [0x03, 0xE8] : [1, 2, 3]))
        guard case .frame(let header) = result else {
            Issue.record("expected a frame, got \(result)")
            return
        }
        #expect(header.opcode.rawValue == opcode)
    }

    @Test func opcodeIsControl() {
        #expect(Opcode.close.isControl && Opcode.ping.isControl && Opcode.pong.isControl)
        #expect(!Opcode.text.isControl && !Opcode.binary.isControl && !Opcode.continuation.isControl)
    }

    @Test(arguments: [UInt8(0x8), 0x9, 0xA])
    func controlFrameOf125BytesAccepted(_ opcode: UInt8) {
        let body: [UInt8] = opcode == 0x8 ? [0x03, 0xE8] + Array(repeating: 0x61, count: 123) : Array(repeating: 7, count: 125)
        let (result, buffer) = parse(clientFrame(opcode, body))
        #expect(payload(result, buffer) == body)
    }

    @Test(arguments: [UInt8(0x8), 0x9, 0xA])
    func controlFrameOver125BytesRefused(_ opcode: UInt8) {
        let (result, _) = parse(clientFrame(opcode, Array(repeating: 7, count: 126)))
        #expect(result == .failure(.protocolViolation("control frame too long")))
        // Known from the second byte alone: the 126/127 length forms are never allowed on control frames.
        let (early126, _) = parse([0x80 | opcode, 0xFE])
        #expect(early126 == .failure(.protocolViolation("control frame too long")))
        let (early127, _) = parse([0x80 | opcode, 0xFF])
        #expect(early127 == .failure(.protocolViolation("control frame too long")))
        // Even a small length in the 16-bit form is refused (126 > 125 in the 7-bit field).
        let (small, _) = parse([0x80 | opcode, 0xFE, 0x00, 0x05] + rfcMask + hello)
        #expect(small == .failure(.protocolViolation("control frame too long")))
    }

    @Test(arguments: [UInt8(0x8), 0x9, 0xA])
    func fragmentedControlFrameRefused(_ opcode: UInt8) {
        let (result, _) = parse(clientFrame(opcode, [], fin: false))
        #expect(result == .failure(.protocolViolation("fragmented control frame")))
        let (early, _) = parse([opcode, 0x80])
        #expect(early == .failure(.protocolViolation("fragmented control frame")))
    }

    @Test(arguments: [UInt8(0x0), 0x1, 0x2, 0x8, 0x9, 0xA])
    func unmaskedClientFrameRefused(_ opcode: UInt8) {
        let (result, _) = parse(clientFrame(opcode, [], mask: nil))
        #expect(result == .failure(.protocolViolation("client frame not masked")))
    }

    @Test func maskedFrameRefusedWhenMaskingIsNotExpected() {
        let (result, _) = parse(clientFrame(0x1, hello), requireMask: false)
        #expect(result == .failure(.protocolViolation("server frame masked")))
    }

    @Test func sixtyFourBitLengthWithTopBitSetRefused() {
        let header: [UInt8] = [0x82, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 0x01]
        let (result, _) = parse(header + rfcMask, maxPayloadLength: Int.max)
        #expect(result == .failure(.protocolViolation("payload length top bit set")))
        let (allOnes, _) = parse([0x82, 0xFF] + Array(repeating: 0xFF, count: 8), maxPayloadLength: Int.max)
        #expect(allOnes == .failure(.protocolViolation("payload length top bit set")))
        // Refused as soon as the 8 length bytes are there, before the mask key.
        let (early, _) = parse(header, maxPayloadLength: Int.max)
        #expect(early == .failure(.protocolViolation("payload length top bit set")))
    }

    @Test func largestSixtyFourBitLengthWithTopBitClearIsTooBig() {
        let (result, _) = parse([0x82, 0xFF, 0x7F] + Array(repeating: 0xFF, count: 7))
        #expect(result == .failure(.messageTooBig))
    }

    @Test func tooBigFailsBeforeThePayloadArrives() {
        // 7-bit, 16-bit and 64-bit length forms, each one byte over the limit, with no payload present.
        let (r7, _) = parse([0x82, 0x80 | 101], maxPayloadLength: 100)
        #expect(r7 == .failure(.messageTooBig))
        let (r16, _) = parse([0x82, 0xFE, 0x03, 0xE9], maxPayloadLength: 1000)
        #expect(r16 == .failure(.messageTooBig))
        let (r64, _) = parse([0x82, 0xFF, 0, 0, 0, 0, 0, 0x01, 0x00, 0x01], maxPayloadLength: 65536)
        #expect(r64 == .failure(.messageTooBig))
        let (huge, _) = parse([0x82, 0xFF, 0, 0, 0x01, 0, 0, 0, 0, 0], maxPayloadLength: 65536)
        #expect(huge == .failure(.messageTooBig))
    }

    @Test func exactlyTheLimitIsAccepted() {
        let (r7, _) = parse([0x82, 0x80 | 100] + rfcMask, maxPayloadLength: 100)
        #expect(r7 == .incomplete(frameLength: 106))
        let (r16, _) = parse([0x82, 0xFE, 0x03, 0xE8] + rfcMask, maxPayloadLength: 1000)
        #expect(r16 == .incomplete(frameLength: 1008))
        let (r64, _) = parse([0x82, 0xFF, 0, 0, 0, 0, 0, 0x01, 0x00, 0x00] + rfcMask, maxPayloadLength: 65536)
        #expect(r64 == .incomplete(frameLength: 65550))
        let data = Array(repeating: UInt8(9), count: 100)
        let (whole, buffer) = parse(clientFrame(0x2, data), maxPayloadLength: 100)
        #expect(payload(whole, buffer) == data)
    }

    @Test func emptyMaskedFrames() {
        let (text, _) = parse([0x81, 0x80] + rfcMask)
        #expect(text == .frame(FrameHeader(fin: true, rsv: 0, opcode: .text, maskKey: rfcMaskKey, payloadLength: 0, headerLength: 6)))
        let (continuation, _) = parse([0x00, 0x80] + rfcMask)
        #expect(continuation == .frame(FrameHeader(fin: false, rsv: 0, opcode: .continuation, maskKey: rfcMaskKey, payloadLength: 0, headerLength: 6)))
    }

    @Test func frameHeaderLengths() {
        let header = FrameHeader(fin: true, rsv: 0, opcode: .binary, maskKey: 1, payloadLength: 300, headerLength: 8)
        #expect(header.frameLength == 308)
        #expect(FrameHeader.rsv1 == 0x40 && FrameHeader.rsv2 == 0x20 && FrameHeader.rsv3 == 0x10)
    }
}

// MARK: - Masking

@Suite struct FrameParserMasking {
    @Test func applyMaskMatchesBytewiseXORAtEveryLengthAndAlignment() {
        var generator = SeededGenerator(seed: 42)
        let maskBytes: [UInt8] = [0x37, 0xfa, 0x21, 0x3d]
        let key = UInt32(maskBytes[0]) | UInt32(maskBytes[1]) << 8 | UInt32(maskBytes[2]) << 16 | UInt32(maskBytes[3]) << 24
        for offset in 0..<8 {
            for length in 0..<70 {
                let data = (0..<length).map { _ in UInt8.random(in: 0...255, using: &generator) }
                var buffer = Array(repeating: UInt8(0xEE), count: offset) + data + [0xEE, 0xEE]
                buffer.withUnsafeMutableBytes { FrameParser.applyMask(key, to: $0.baseAddress! + offset, count: length) }
                let expected = data.enumerated().map { $0.element ^ maskBytes[$0.offset % 4] }
                #expect(Array(buffer[offset..<(offset + length)]) == expected, "offset \(offset) length \(length)")
                #expect(Array(buffer[..<offset]) == Array(repeating: 0xEE, count: offset))
                #expect(Array(buffer.suffix(2)) == [0xEE, 0xEE], "no write past the payload")
                buffer.withUnsafeMutableBytes { FrameParser.applyMask(key, to: $0.baseAddress! + offset, count: length) }
                #expect(Array(buffer[offset..<(offset + length)]) == data, "masking twice is the identity")
            }
        }
    }

    @Test func maskedFramesOfManyLengthsUnmask() {
        var generator = SeededGenerator(seed: 7)
        for length in [0, 1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 125, 126, 127, 1000, 65535, 65536, 70000] {
            let mask = (0..<4).map { _ in UInt8.random(in: 0...255, using: &generator) }
            let data = (0..<length).map { _ in UInt8.random(in: 0...255, using: &generator) }
            let (result, buffer) = parse(clientFrame(0x2, data, mask: mask))
            #expect(payload(result, buffer) == data, "length \(length)")
        }
    }
}
