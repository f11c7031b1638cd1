import Testing
import Philote

private func bytes(_ frame: SharedFrame) -> [UInt8] { Array(frame.buffer) }

private func frame(_ opcode: Opcode, _ payload: [UInt8]) -> [UInt8] {
    bytes(payload.withUnsafeBytes { FrameWriter.frame(opcode, payload: $0) })
}

/// Parses a server frame as a client would (unmasked expected).
private func parseServerFrame(_ wire: [UInt8]) -> (FrameHeader, [UInt8])? {
    var parser = FrameParser(maxPayloadLength: 1 << 20)
    parser.requireMask = false
    var buffer = wire
    guard case .frame(let header) = buffer.withUnsafeMutableBytes({ parser.parse($0) }) else { return nil }
    return (header, Array(buffer[header.headerLength..<header.frameLength]))
}

@Suite struct FrameWriterTests {
    // MARK: RFC 6455 section 5.7 examples, byte for byte

    @Test func singleFrameUnmaskedText() {
        #expect(frame(.text, Array("Hello")) == [0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f])
    }

    @Test func unmaskedPing() {
        #expect(frame(.ping, Array("Hello")) == [0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f])
    }

    @Test func unmaskedPong() {
        #expect(frame(.pong, Array("Hello")) == [0x8a, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f])
    }

    @Test func fragmentedUnmaskedText() {
        var first = [UInt8](repeating: 0, count: 2)
        let firstLength = first.withUnsafeMutableBytes {
            FrameWriter.writeHeader(to: $0.baseAddress!, opcode: .text, payloadLength: 3, fin: false)
        }
        var second = [UInt8](repeating: 0, count: 2)
        let secondLength = second.withUnsafeMutableBytes {
            FrameWriter.writeHeader(to: $0.baseAddress!, opcode: .continuation, payloadLength: 2, fin: true)
        }
        #expect(firstLength == 2 && secondLength == 2)
        #expect(first + Array("Hel") == [0x01, 0x03, 0x48, 0x65, 0x6c])
        #expect(second + Array("lo") == [0x80, 0x02, 0x6c, 0x6f])
    }

    @Test func binary256Bytes() {
        let payload = (0..<256).map { UInt8(truncatingIfNeeded: $0) }
        let wire = frame(.binary, payload)
        #expect(Array(wire[..<4]) == [0x82, 0x7E, 0x01, 0x00])
        #expect(Array(wire[4...]) == payload)
    }

    @Test func binary64KiB() {
        let payload = (0..<65536).map { UInt8(truncatingIfNeeded: $0 >> 3) }
        let wire = frame(.binary, payload)
        #expect(Array(wire[..<10]) == [0x82, 0x7F, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00])
        #expect(wire.count == 65546)
        #expect(Array(wire[10...]) == payload)
    }

    // MARK: Length encodings

    @Test(arguments: [(0, 2), (1, 2), (125, 2), (126, 4), (127, 4), (65535, 4), (65536, 10), (1 << 20, 10)])
    func headerLengthPerPayloadLength(_ length: Int, _ header: Int) {
        #expect(FrameWriter.headerLength(payloadLength: length) == header)
        var buffer = [UInt8](repeating: 0xEE, count: 12)
        let written = buffer.withUnsafeMutableBytes {
            FrameWriter.writeHeader(to: $0.baseAddress!, opcode: .binary, payloadLength: length)
        }
        #expect(written == header)
        #expect(buffer[written...].allSatisfy { $0 == 0xEE }, "nothing written past the header")
        #expect(buffer[1] & 0x80 == 0, "server frames are never masked")
    }

    @Test(arguments: [0, 1, 125, 126, 127, 1000, 65535, 65536, 70000])
    func framesRoundTripThroughAClientSideParser(_ length: Int) {
        let payload = (0..<length).map { UInt8(truncatingIfNeeded: $0 &* 13) }
        for opcode in [Opcode.text, .binary] {
            guard let (header, parsed) = parseServerFrame(frame(opcode, payload)) else {
                Issue.record("did not parse back: \(length)")
                continue
            }
            #expect(header.opcode == opcode && header.fin && header.rsv == 0 && header.maskKey == nil)
            #expect(header.payloadLength == length)
            #expect(parsed == payload)
        }
    }

    @Test func rsvAndFinBits() {
        var buffer = [UInt8](repeating: 0, count: 2)
        _ = buffer.withUnsafeMutableBytes {
            FrameWriter.writeHeader(to: $0.baseAddress!, opcode: .text, payloadLength: 0, fin: true, rsv: FrameHeader.rsv1)
        }
        #expect(buffer == [0xC1, 0x00])
    }

    // MARK: Close frames

    @Test func closeFrames() {
        #expect(bytes(FrameWriter.closeFrame(nil)) == [0x88, 0x00])
        #expect(bytes(FrameWriter.closeFrame(1000)) == [0x88, 0x02, 0x03, 0xE8])
        #expect(bytes(FrameWriter.closeFrame(1009, reason: "message too big"))
            == [0x88, 0x11, 0x03, 0xF1] + Array("message too big"))
        #expect(bytes(FrameWriter.closeFrame(1002, reason: "")) == [0x88, 0x02, 0x03, 0xEA])
    }

    @Test func closeReasonIsCutToTheControlFrameLimit() {
        let wire = bytes(FrameWriter.closeFrame(1000, reason: String(repeating: "x", count: 300)))
        #expect(wire.count == 2 + 125)
        #expect(wire[1] == 125)
        #expect(Array(wire[2..<4]) == [0x03, 0xE8])
    }

    /// A reason cut at 123 bytes must still be valid UTF-8 (section 5.5.1: the body after the code is
    /// UTF-8; a peer fails the connection with 1007 otherwise), so it must be cut at a character boundary.
    @Test(arguments: ["é", "€", "𝄞"])
    func closeReasonIsCutAtACharacterBoundary(_ character: String) {
        checkCloseReasonCut(character)
    }

    private func checkCloseReasonCut(_ character: String) {
        for lead in 0..<4 {
            let reason = String(repeating: "a", count: lead) + String(repeating: character, count: 80)
            let wire = bytes(FrameWriter.closeFrame(1000, reason: reason))
            #expect(wire.count <= 2 + 125)
            let reasonBytes = Array(wire[4...])
            var validator = UTF8Validator()
            #expect(validator.validate(reasonBytes) && validator.isComplete,
                    "reason of \(lead) ASCII + \(character)×80 cut to \(reasonBytes.count) bytes is not valid UTF-8")
            // And the frame is one our own reader accepts.
            var masked = [0x88, 0x80 | wire[1], 0, 0, 0, 0] + Array(wire[2...])
            var reader = WebSocketReader(maxMessageSize: 1024)
            let sink = RecordingSink()
            let outcome = masked.withUnsafeMutableBytes { reader.read($0, into: sink) }
            #expect(outcome.stop == .closeReceived, "lead \(lead) \(character)")
            masked.removeAll()
        }
    }

    @Test func sharedFrameHoldsItsBytes() {
        let frame = SharedFrame.make(bytes: [1, 2, 3])
        #expect(frame.length == 3)
        #expect(Array(frame.buffer) == [1, 2, 3])
        let empty = SharedFrame.make(length: 0)
        #expect(empty.length == 0)
        #expect(empty.buffer.isEmpty)
    }
}
