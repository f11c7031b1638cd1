import Testing

@testable import Philote

@Suite struct BrokerEnvelopeTests {
    private let origin = ServerID.random()

    private func sealed(_ text: String) -> [UInt8] {
        let frame = Array(text.utf8).withUnsafeBytes { FrameWriter.frame(.text, payload: $0) }
        return BrokerEnvelope.seal(frame, origin: origin)
    }

    @Test(arguments: [0, 1, 125, 126, 65535, 65536, 70000])
    func roundTrip(length: Int) throws {
        let text = String(repeating: "x", count: length)
        let envelope = sealed(text)
        try envelope.withUnsafeBytes { bytes in
            let opened = try #require(BrokerEnvelope.open(bytes))
            #expect(opened.origin == origin)
            #expect(Array(opened.payload) == Array(text.utf8))
            #expect(opened.frame.count == envelope.count - BrokerEnvelope.headerSize)
        }
    }

    @Test func foreignOrDamagedPayloadsAreRefused() {
        var cases: [[UInt8]] = [[], Array("hello".utf8), Array(sealed("abc").dropLast())]
        var wrongMarker = sealed("abc")
        wrongMarker[2] = 2
        cases.append(wrongMarker)
        var masked = sealed("abc")
        masked[BrokerEnvelope.headerSize + 1] |= 0x80
        cases.append(masked)
        var binary = sealed("abc")
        binary[BrokerEnvelope.headerSize] = 0x82
        cases.append(binary)
        var longer = sealed("abc")
        longer.append(0)
        cases.append(longer)
        cases.append(Array(sealed(String(repeating: "y", count: 300)).prefix(BrokerEnvelope.headerSize + 3)))
        for bytes in cases {
            bytes.withUnsafeBytes { #expect(BrokerEnvelope.open($0) == nil, "\(bytes.prefix(24))") }
        }
    }
}
