import Testing
@testable import Philote

private let rfcMaskedHello: [UInt8] = [0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58]
private let rfcMaskedPong: [UInt8] = [0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58]

/// A close frame payload: code (big-endian) and reason bytes.
private func closePayload(_ code: UInt16, _ reason: [UInt8] = []) -> [UInt8] {
    [UInt8(code >> 8), UInt8(code & 0xFF)] + reason
}

/// One read of `bytes` with a fresh reader.
private func readOnce(_ bytes: [UInt8], maxMessageSize: Int = 65536) -> (WebSocketReader.Outcome, [RecordingSink.Event]) {
    var reader = WebSocketReader(maxMessageSize: maxMessageSize)
    let sink = RecordingSink()
    var buffer = bytes
    let outcome = buffer.withUnsafeMutableBytes { reader.read($0, into: sink) }
    return (outcome, sink.events)
}

@Suite struct WebSocketReaderTests {
    @Test func rfcMaskedTextAndPong() {
        let (outcome, events) = readOnce(rfcMaskedHello + rfcMaskedPong)
        #expect(outcome == WebSocketReader.Outcome(consumed: 22, pendingFrameLength: nil, stop: nil))
        #expect(events == [.message(.text, Array("Hello")), .pong(Array("Hello"))])
    }

    @Test func rfcFragmentedTextMasked() {
        let bytes = clientFrame(0x1, Array("Hel"), fin: false) + clientFrame(0x0, Array("lo"))
        let (outcome, events) = readOnce(bytes)
        #expect(outcome.consumed == bytes.count)
        #expect(outcome.stop == nil)
        #expect(events == [.message(.text, Array("Hello"))])
    }

    @Test func controlFramesBetweenFragmentsAreDeliveredAtOnce() {
        let bytes = clientFrame(0x1, Array("Hel"), fin: false) + clientFrame(0x9, Array("p1"))
            + clientFrame(0x0, Array("l"), fin: false) + clientFrame(0xA, Array("p2"))
            + clientFrame(0x0, Array("o"))
        let (outcome, events) = readOnce(bytes)
        #expect(outcome.stop == nil)
        #expect(events == [.ping(Array("p1")), .pong(Array("p2")), .message(.text, Array("Hello"))])
    }

    @Test func pingPayloadIsPassedThrough() {
        let (_, events) = readOnce(clientFrame(0x9, Array(repeating: 0xA5, count: 125)) + clientFrame(0x9, []))
        #expect(events == [.ping(Array(repeating: 0xA5, count: 125)), .ping([])])
    }

    @Test func emptyAndLargeMessages() {
        let big = (0..<65536).map { UInt8(truncatingIfNeeded: $0 * 31) }
        let (outcome, events) = readOnce(clientFrame(0x1, []) + clientFrame(0x2, []) + clientFrame(0x2, big))
        #expect(outcome.stop == nil)
        #expect(events == [.message(.text, []), .message(.binary, []), .message(.binary, big)])
    }

    @Test func incompleteFrameReportsItsLength() {
        let frame = clientFrame(0x2, Array(repeating: 1, count: 300))
        let (outcome, events) = readOnce(rfcMaskedHello + Array(frame[..<10]))
        #expect(outcome == WebSocketReader.Outcome(consumed: 11, pendingFrameLength: 308, stop: nil))
        #expect(events == [.message(.text, Array("Hello"))])
        let (headerOnly, _) = readOnce(Array(frame[..<3]))
        #expect(headerOnly == WebSocketReader.Outcome(consumed: 0, pendingFrameLength: nil, stop: nil))
    }

    /// A conversation split into two reads at every byte position gives the same events as one read.
    @Test func streamSplitAtEveryBytePositionGivesTheSameEvents() {
        let stream = rfcMaskedHello
            + clientFrame(0x1, Array("κό"), fin: false, mask: [1, 2, 3, 4])
            + clientFrame(0x9, Array("ping"), mask: [9, 8, 7, 6])
            + clientFrame(0x0, Array("σμε"), mask: [0, 0, 0, 0])
            + clientFrame(0x2, Array(repeating: 0x42, count: 130), mask: [0xFF, 0, 0xFF, 0])
            + rfcMaskedPong
            + clientFrame(0x8, closePayload(1000, Array("bye")))
        let expected: [RecordingSink.Event] = [
            .message(.text, Array("Hello")), .ping(Array("ping")), .message(.text, Array("κόσμε")),
            .message(.binary, Array(repeating: 0x42, count: 130)), .pong(Array("Hello")), .close(1000, Array("bye")),
        ]
        let whole = readInChunks([stream])
        #expect(whole.events == expected)
        #expect(whole.stop == .closeReceived)
        for split in 0...stream.count {
            let result = readInChunks([Array(stream[..<split]), Array(stream[split...])])
            #expect(result.events == expected, "split \(split)")
            #expect(result.stop == .closeReceived, "split \(split)")
            #expect(result.leftover == 0)
        }
        let bytewise = readInChunks(stream.map { [$0] })
        #expect(bytewise.events == expected)
        #expect(bytewise.stop == .closeReceived)
    }

    @Test func failureReportsWhatCameBeforeIt() {
        let bytes = rfcMaskedHello + clientFrame(0x1, Array("x"), mask: nil) + rfcMaskedHello
        let (outcome, events) = readOnce(bytes)
        #expect(outcome.consumed == 11)
        #expect(outcome.stop == .failure(.protocolViolation("client frame not masked")))
        #expect(events == [.message(.text, Array("Hello"))])
    }

    // MARK: Violations and their close codes

    @Test func violationsMapToTheirCloseCodes() {
        let cases: [(name: String, bytes: [UInt8], code: UInt16)] = [
            ("unmasked", [0x81, 0x05] + Array("Hello"), 1002),
            ("RSV1", clientFrame(0x1, Array("a"), rsv: 0x40), 1002),
            ("reserved opcode 3", clientFrame(0x3, []), 1002),
            ("reserved opcode 0xB", clientFrame(0xB, []), 1002),
            ("ping 126 bytes", clientFrame(0x9, Array(repeating: 0, count: 126)), 1002),
            ("fragmented ping", clientFrame(0x9, [], fin: false), 1002),
            ("continuation first", clientFrame(0x0, Array("a")), 1002),
            ("text inside text", clientFrame(0x1, Array("a"), fin: false) + clientFrame(0x1, Array("b")), 1002),
            ("top bit length", [0x82, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 0], 1002),
            ("invalid UTF-8", clientFrame(0x1, [0xC0, 0x80]), 1007),
            ("truncated UTF-8", clientFrame(0x1, [0xE2, 0x82]), 1007),
            ("too big", [0x82, 0xFE, 0x04, 0x01], 1009),
            ("too big across fragments", clientFrame(0x2, Array(repeating: 0, count: 600), fin: false)
                + clientFrame(0x0, Array(repeating: 0, count: 600)), 1009),
        ]
        for (name, bytes, code) in cases {
            let (outcome, _) = readOnce(bytes, maxMessageSize: 1024)
            guard case .failure(let error) = outcome.stop else {
                Issue.record("\(name): expected a failure, got \(String(describing: outcome.stop))")
                continue
            }
            #expect(error.closeCode.rawValue == code, "\(name)")
            #expect(error.reason.utf8.count <= 123, "\(name)")
        }
    }

    @Test func invalidUTF8FailsFastBeforeTheMessageEnds() {
        let (outcome, events) = readOnce(clientFrame(0x1, [0x61, 0xFF], fin: false))
        #expect(outcome.stop == .failure(.invalidUTF8))
        #expect(events.isEmpty)
    }

    /// One large text frame: a bad byte early in its payload fails as soon as it arrives, not once the frame is here.
    @Test(arguments: [[UInt8](), [1, 2, 3, 4], [0x80, 0x7F, 0xFF, 0x01]])
    func invalidUTF8InAnIncompleteFrameFailsAtTheFirstBadByte(_ mask: [UInt8]) {
        let payload = Array("ok ".utf8) + [0xC3] + [0x28] + Array(repeating: 0x61, count: 4000)
        let frame = clientFrame(0x1, payload, mask: mask.isEmpty ? [0, 0, 0, 0] : mask)
        // 8 header bytes, then the first six payload bytes (the bad pair is at 3 and 4).
        let (outcome, events) = readOnce(Array(frame[..<14]))
        #expect(outcome.stop == .failure(.invalidUTF8))
        #expect(events.isEmpty)
        // Not before the bad byte: a prefix ending inside the valid part is only incomplete.
        let (early, _) = readOnce(Array(frame[..<11]))
        #expect(early.stop == nil)
    }

    /// The payload arrives a byte at a time (the connection offers the frame again from its start each time):
    /// valid text split anywhere, even inside a character and at every mask phase, never fails early.
    @Test func validTextArrivingAByteAtATimeIsDelivered() {
        let text = Array("κόσμε ok ".utf8) + Array(repeating: 0x7A, count: 40) + Array("€𝄞".utf8)
        let stream = clientFrame(0x1, Array(text[..<7]), fin: false, mask: [3, 1, 4, 1])
            + clientFrame(0x0, Array(text[7...]), mask: [2, 7, 1, 8])
        let result = readInChunks(stream.map { [$0] })
        #expect(result.events == [.message(.text, text)])
        #expect(result.stop == nil)
    }

    @Test func invalidUTF8InAnIncompleteContinuationFailsEarly() {
        // The first fragment ends inside "é" (0xC3 0xA9): its continuation must start with 0xA9, and 0x41 cannot.
        let first = clientFrame(0x1, [0x61, 0xC3], fin: false)
        let continuation = clientFrame(0x0, [0x41] + Array(repeating: 0x61, count: 1000), mask: [5, 6, 7, 8])
        let (outcome, _) = readOnce(first + Array(continuation[..<9]))
        #expect(outcome.stop == .failure(.invalidUTF8))
    }

    /// A continuation whose header announces more than the message has left fails at the header, before its
    /// payload arrives.
    @Test func aFragmentedMessageTooLargeFailsAtTheHeaderThatMakesItSo() {
        let first = clientFrame(0x2, Array(repeating: 1, count: 600), fin: false)
        let fits = clientFrame(0x0, Array(repeating: 2, count: 424))
        let tooMuch = clientFrame(0x0, Array(repeating: 2, count: 425))
        let (accepted, _) = readOnce(first + Array(fits[..<8]), maxMessageSize: 1024)
        #expect(accepted.stop == nil)
        let (refused, _) = readOnce(first + Array(tooMuch[..<8]), maxMessageSize: 1024)
        #expect(refused.stop == .failure(.messageTooBig))
        // A ping between fragments is not held to what the message has left.
        let (ping, events) = readOnce(
            first + clientFrame(0x0, Array(repeating: 3, count: 400), fin: false)
                + clientFrame(0x9, Array(repeating: 4, count: 100)), maxMessageSize: 1024)
        #expect(ping.stop == nil)
        #expect(events == [.ping(Array(repeating: 4, count: 100))])
    }

    @Test func protocolErrorCodesAndReasons() {
        #expect(ProtocolError.protocolViolation("x").closeCode == .protocolError)
        #expect(ProtocolError.protocolViolation("x").reason == "x")
        #expect(ProtocolError.invalidUTF8.closeCode == .invalidPayload)
        #expect(ProtocolError.messageTooBig.closeCode == .messageTooBig)
        #expect(CloseCode.protocolError.rawValue == 1002)
        #expect(CloseCode.invalidPayload.rawValue == 1007)
    }

    // MARK: Close frames (section 5.5.1, 7.4)

    @Test func emptyCloseStopsReading() {
        let (outcome, events) = readOnce(clientFrame(0x8, []) + rfcMaskedHello)
        #expect(outcome == WebSocketReader.Outcome(consumed: 6, pendingFrameLength: nil, stop: .closeReceived))
        #expect(events == [.close(nil, [])])
    }

    @Test func oneByteCloseIsAProtocolError() {
        let (outcome, events) = readOnce(clientFrame(0x8, [0x03]))
        #expect(outcome.stop == .failure(.protocolViolation("close payload of one byte")))
        #expect(events.isEmpty)
    }

    @Test(arguments: [UInt16(1000), 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 3999, 4000, 4999])
    func validCloseCodesAreAccepted(_ code: UInt16) {
        let (outcome, events) = readOnce(clientFrame(0x8, closePayload(code)))
        #expect(outcome.stop == .closeReceived)
        #expect(events == [.close(code, [])])
        #expect(CloseCode.isValidOnWire(code))
    }

    @Test(arguments: [UInt16(0), 1, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535])
    func invalidCloseCodesAreRefused(_ code: UInt16) {
        let (outcome, events) = readOnce(clientFrame(0x8, closePayload(code, Array("reason"))))
        #expect(outcome.stop == .failure(.protocolViolation("invalid close code")))
        #expect(events.isEmpty)
        #expect(!CloseCode.isValidOnWire(code))
    }

    @Test func closeReasonIsDelivered() {
        let reason = Array("κόσμε going away")
        let (outcome, events) = readOnce(clientFrame(0x8, closePayload(1001, reason)))
        #expect(outcome.stop == .closeReceived)
        #expect(events == [.close(1001, reason)])
        let longest = Array(repeating: UInt8(0x7A), count: 123)
        let (_, longEvents) = readOnce(clientFrame(0x8, closePayload(1000, longest)))
        #expect(longEvents == [.close(1000, longest)])
    }

    @Test(arguments: [[UInt8(0xFF)], [0xC0, 0x80], [0xED, 0xA0, 0x80], [0x61, 0xE2, 0x82], [0xF0, 0x9F]])
    func closeReasonMustBeValidUTF8(_ reason: [UInt8]) {
        let (outcome, events) = readOnce(clientFrame(0x8, closePayload(1000, reason)))
        #expect(outcome.stop == .failure(.invalidUTF8))
        #expect(events.isEmpty)
    }

    @Test func validateCloseDirectly() {
        func validate(_ bytes: [UInt8]) -> Result<UInt16?, ProtocolError> {
            bytes.withUnsafeBytes { WebSocketReader.validateClose($0) }
        }
        #expect(validate([]) == .success(nil))
        #expect(validate([0x03]) == .failure(.protocolViolation("close payload of one byte")))
        #expect(validate([0x03, 0xE8]) == .success(1000))
        #expect(validate([0x03, 0xED]) == .failure(.protocolViolation("invalid close code")))  // 1005
        #expect(validate([0x03, 0xE8, 0xFF]) == .failure(.invalidUTF8))
    }

    @Test func closeBetweenFragmentsIsAccepted() {
        let (outcome, events) = readOnce(clientFrame(0x1, Array("Hel"), fin: false) + clientFrame(0x8, closePayload(1000)))
        #expect(outcome.stop == .closeReceived)
        #expect(events == [.close(1000, [])])
    }
}
