import Testing
@testable import Philote

private func header(_ opcode: Opcode, fin: Bool, length: Int) -> FrameHeader {
    FrameHeader(fin: fin, rsv: 0, opcode: opcode, maskKey: nil, payloadLength: length, headerLength: 2)
}

fileprivate extension MessageAssembler {
    /// Offers one data frame with `payload`.
    mutating func offer(_ opcode: Opcode, _ payload: [UInt8], fin: Bool) -> Result {
        payload.withUnsafeBytes { accept(header(opcode, fin: fin, length: payload.count), payload: $0) }
    }
}

/// Feeds `fragments` as one message (first with `opcode`, then continuations; the last has FIN).
private func assemble(_ opcode: Opcode, _ fragments: [[UInt8]], max: Int = 65536) -> (MessageAssembler.Result, [UInt8]?) {
    var assembler = MessageAssembler(maxMessageSize: max)
    var last = MessageAssembler.Result.fragmentStored
    for (index, fragment) in fragments.enumerated() {
        last = assembler.offer(index == 0 ? opcode : .continuation, fragment, fin: index == fragments.count - 1)
        if index < fragments.count - 1, last != .fragmentStored { return (last, nil) }
    }
    if case .messageAssembled = last { return (last, assembler.takeMessage()) }
    return (last, nil)
}

@Suite struct MessageAssemblerTests {
    @Test func unfragmentedMessagesAreDeliveredInPlace() {
        var assembler = MessageAssembler(maxMessageSize: 100)
        #expect(assembler.offer(.text, Array("Hello"), fin: true) == .messageInPlace(.text))
        #expect(assembler.offer(.binary, [0, 0xFF, 0x80], fin: true) == .messageInPlace(.binary))
        #expect(assembler.offer(.text, [], fin: true) == .messageInPlace(.text))
        #expect(assembler.offer(.binary, [], fin: true) == .messageInPlace(.binary))
        #expect(!assembler.isAssembling)
    }

    @Test func rfcFragmentedTextExample() {
        // Section 5.7: "Hel" (text, no FIN) then "lo" (continuation, FIN).
        var assembler = MessageAssembler(maxMessageSize: 100)
        #expect(assembler.offer(.text, Array("Hel"), fin: false) == .fragmentStored)
        #expect(assembler.isAssembling)
        #expect(assembler.offer(.continuation, Array("lo"), fin: true) == .messageAssembled(.text))
        #expect(assembler.takeMessage() == Array("Hello"))
        #expect(!assembler.isAssembling)
    }

    @Test func fragmentedBinaryWithManyAndEmptyFragments() {
        let (result, message) = assemble(.binary, [[1, 2], [], [3], [], [4, 5, 6], []])
        #expect(result == .messageAssembled(.binary))
        #expect(message == [1, 2, 3, 4, 5, 6])
    }

    @Test func assemblerIsReusableAfterAMessage() {
        var assembler = MessageAssembler(maxMessageSize: 100)
        #expect(assembler.offer(.text, Array("a"), fin: false) == .fragmentStored)
        #expect(assembler.offer(.continuation, Array("b"), fin: true) == .messageAssembled(.text))
        #expect(assembler.takeMessage() == Array("ab"))
        #expect(assembler.offer(.binary, [9], fin: false) == .fragmentStored)
        #expect(assembler.offer(.continuation, [8], fin: true) == .messageAssembled(.binary))
        #expect(assembler.takeMessage() == [9, 8])
        #expect(assembler.offer(.text, Array("c"), fin: true) == .messageInPlace(.text))
    }

    // MARK: Continuation rules (section 5.4)

    @Test(arguments: [true, false])
    func continuationWithoutAMessageIsRefused(_ fin: Bool) {
        var assembler = MessageAssembler(maxMessageSize: 100)
        #expect(assembler.offer(.continuation, Array("x"), fin: fin)
            == .failure(.protocolViolation("continuation frame without a message")))
    }

    @Test func continuationAfterACompletedMessageIsRefused() {
        var assembler = MessageAssembler(maxMessageSize: 100)
        #expect(assembler.offer(.text, Array("a"), fin: false) == .fragmentStored)
        #expect(assembler.offer(.continuation, Array("b"), fin: true) == .messageAssembled(.text))
        _ = assembler.takeMessage()
        #expect(assembler.offer(.continuation, Array("c"), fin: true)
            == .failure(.protocolViolation("continuation frame without a message")))
        var single = MessageAssembler(maxMessageSize: 100)
        #expect(single.offer(.binary, [1], fin: true) == .messageInPlace(.binary))
        #expect(single.offer(.continuation, [2], fin: true)
            == .failure(.protocolViolation("continuation frame without a message")))
    }

    @Test(arguments: [Opcode.text, .binary], [Opcode.text, .binary])
    func newDataFrameWhileAssemblingIsRefused(_ first: Opcode, _ second: Opcode) {
        for fin in [true, false] {
            var assembler = MessageAssembler(maxMessageSize: 100)
            #expect(assembler.offer(first, Array("a"), fin: false) == .fragmentStored)
            #expect(assembler.offer(second, Array("b"), fin: fin)
                == .failure(.protocolViolation("new message before the previous one finished")))
        }
    }

    // MARK: Size cap across fragments

    @Test func messageExactlyAtTheCapIsAssembled() {
        let (result, message) = assemble(.binary, [Array(repeating: 1, count: 6), Array(repeating: 2, count: 4)], max: 10)
        #expect(result == .messageAssembled(.binary))
        #expect(message?.count == 10)
    }

    @Test(arguments: [Opcode.text, .binary])
    func messageOverTheCapAcrossFragmentsIsTooBig(_ opcode: Opcode) {
        var assembler = MessageAssembler(maxMessageSize: 10)
        #expect(assembler.offer(opcode, Array("aaaaaa"), fin: false) == .fragmentStored)
        // Fails on the fragment that crosses the cap, even without FIN.
        #expect(assembler.offer(.continuation, Array("bbbbb"), fin: false) == .failure(.messageTooBig))
        #expect(ProtocolError.messageTooBig.closeCode == .messageTooBig)
        #expect(CloseCode.messageTooBig.rawValue == 1009)
    }

    @Test func manySmallFragmentsOverTheCapAreTooBig() {
        var assembler = MessageAssembler(maxMessageSize: 16)
        #expect(assembler.offer(.binary, [0], fin: false) == .fragmentStored)
        for _ in 0..<15 { #expect(assembler.offer(.continuation, [0], fin: false) == .fragmentStored) }
        #expect(assembler.offer(.continuation, [0], fin: true) == .failure(.messageTooBig))
    }

    // MARK: UTF-8 across fragments

    static let texts: [String] = ["Hello", "κόσμε", "€uro 𝄞 clef", "日本語", "a€b𝄞c"]

    @Test(arguments: texts)
    func textSplitIntoTwoFragmentsAtEveryBytePosition(_ text: String) {
        let bytes = Array(text.utf8)
        for split in 0...bytes.count {
            let (result, message) = assemble(.text, [Array(bytes[..<split]), Array(bytes[split...])])
            #expect(result == .messageAssembled(.text), "split \(split)")
            #expect(message == bytes, "split \(split)")
        }
    }

    @Test(arguments: texts)
    func textSplitIntoOneByteFragments(_ text: String) {
        let bytes = Array(text.utf8)
        let (result, message) = assemble(.text, bytes.map { [$0] })
        #expect(result == .messageAssembled(.text))
        #expect(message == bytes)
    }

    @Test func textSplitIntoThreeFragmentsAtEveryPairOfPositions() {
        let bytes = Array("𝄞€é".utf8)
        for first in 0...bytes.count {
            for second in first...bytes.count {
                let (result, message) = assemble(.text, [Array(bytes[..<first]), Array(bytes[first..<second]), Array(bytes[second...])])
                #expect(result == .messageAssembled(.text), "splits \(first), \(second)")
                #expect(message == bytes)
            }
        }
    }

    @Test(arguments: [
        [UInt8(0xC0), 0x80], [0xED, 0xA0, 0x80], [0xF4, 0x90, 0x80, 0x80], [0xFF], [0x80],
    ])
    func invalidTextInASingleFrameIsRefused(_ bytes: [UInt8]) {
        var assembler = MessageAssembler(maxMessageSize: 100)
        #expect(assembler.offer(.text, Array("ok") + bytes, fin: true) == .failure(.invalidUTF8))
        #expect(ProtocolError.invalidUTF8.closeCode.rawValue == 1007)
    }

    @Test func truncatedTextAtTheEndOfASingleFrameIsRefused() {
        var assembler = MessageAssembler(maxMessageSize: 100)
        #expect(assembler.offer(.text, [0x61, 0xE2, 0x82], fin: true) == .failure(.invalidUTF8))
    }

    @Test func truncatedTextAtTheEndOfTheLastFragmentIsRefused() {
        let (result, _) = assemble(.text, [Array("ab"), [0xF0, 0x9F], [0x98]])
        #expect(result == .failure(.invalidUTF8))
    }

    @Test func invalidTextFailsFastInTheFirstFragment() {
        // The first fragment has no FIN: the bad byte still fails at once, not at the end of the message.
        var assembler = MessageAssembler(maxMessageSize: 100)
        #expect(assembler.offer(.text, [0x61, 0xC0, 0x80], fin: false) == .failure(.invalidUTF8))
    }

    @Test func invalidTextFailsFastInAMiddleFragment() {
        var assembler = MessageAssembler(maxMessageSize: 100)
        #expect(assembler.offer(.text, [0x61, 0xED], fin: false) == .fragmentStored)
        // 0xED 0xA0 would be a surrogate: refused on the continuation, without FIN.
        #expect(assembler.offer(.continuation, [0xA0, 0x80], fin: false) == .failure(.invalidUTF8))
    }

    @Test func invalidSequenceSplitAcrossFragmentsAtEveryPositionIsRefused() {
        let bad: [[UInt8]] = [[0xE0, 0x80, 0x80], [0xED, 0xA0, 0x80], [0xF4, 0x90, 0x80, 0x80], [0xF0, 0x8F, 0xBF, 0xBF]]
        for sequence in bad {
            let bytes = Array("abc".utf8) + sequence + Array("def".utf8)
            for split in 0...bytes.count {
                let (result, _) = assemble(.text, [Array(bytes[..<split]), Array(bytes[split...])])
                #expect(result == .failure(.invalidUTF8), "\(sequence) split \(split)")
            }
        }
    }

    @Test func binaryIsNotValidatedAsUTF8() {
        let (result, message) = assemble(.binary, [[0xC0, 0x80], [0xFF, 0xED]])
        #expect(result == .messageAssembled(.binary))
        #expect(message == [0xC0, 0x80, 0xFF, 0xED])
        var assembler = MessageAssembler(maxMessageSize: 100)
        #expect(assembler.offer(.binary, [0xFF], fin: true) == .messageInPlace(.binary))
    }

    @Test func validatorStateDoesNotLeakIntoTheNextTextMessage() {
        var assembler = MessageAssembler(maxMessageSize: 100)
        #expect(assembler.offer(.text, Array("é".utf8), fin: false) == .fragmentStored)
        #expect(assembler.offer(.continuation, Array("x".utf8), fin: true) == .messageAssembled(.text))
        _ = assembler.takeMessage()
        // A binary message ending mid-"character" must not affect a following text message.
        #expect(assembler.offer(.binary, [0xE2], fin: false) == .fragmentStored)
        #expect(assembler.offer(.continuation, [0x82], fin: true) == .messageAssembled(.binary))
        _ = assembler.takeMessage()
        #expect(assembler.offer(.text, Array("plain"), fin: true) == .messageInPlace(.text))
    }
}
