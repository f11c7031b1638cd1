import Testing

@testable import Philote

/// Decodes `frame` with the server's parser (which requires masking) and returns opcode and payload.
private func decode(_ frame: [UInt8]) -> (Opcode, [UInt8])? {
    var bytes = frame
    return bytes.withUnsafeMutableBytes { buffer -> (Opcode, [UInt8])? in
        guard case .frame(let header) = FrameParser(maxPayloadLength: 1 << 20).parse(buffer),
            header.frameLength == frame.count, header.fin
        else { return nil }
        return (header.opcode, Array(buffer[header.headerLength..<header.frameLength]))
    }
}

@Suite struct ClientFrameEncoderTests {
    @Test(arguments: [0, 1, 125, 126, 65535, 65536])
    func roundTripsThroughTheServerParser(length: Int) {
        let payload = (0..<length).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        let frame = ClientFrameEncoder.frame(.text, payload: payload, maskKey: 0xA1B2_C3D4)
        let decoded = decode(frame)
        #expect(decoded?.0 == .text)
        #expect(decoded?.1 == payload)
        // Masked on the wire: the payload does not appear in clear (beyond the trivially short cases).
        if length >= 8 { #expect(Array(frame.suffix(length)) != payload) }
    }

    @Test func maskKeyIsWrittenInWireOrder() {
        let frame = ClientFrameEncoder.frame(.ping, payload: [0, 0, 0, 0], maskKey: 0x4433_2211)
        #expect(Array(frame) == [0x89, 0x84, 0x11, 0x22, 0x33, 0x44, 0x11, 0x22, 0x33, 0x44])
    }

    @Test func closeCarriesCodeAndReasonCutOnACharacterBoundary() {
        let reason = String(repeating: "é", count: 100)
        guard let (opcode, payload) = decode(ClientFrameEncoder.close(code: 1000, reason: reason, maskKey: 7)) else {
            Issue.record("not decoded")
            return
        }
        #expect(opcode == .close)
        #expect(payload.count <= 125)
        #expect(Array(payload.prefix(2)) == [0x03, 0xE8])
        #expect(String(validating: payload.dropFirst(2), as: UTF8.self) != nil)
        #expect(decode(ClientFrameEncoder.close(code: nil, maskKey: 7))?.1 == [])
    }

    @Test func publishMessageIsTheClientShapeTheServerReads() {
        let json = PublishEncoder.json(channel: "room \"1\"", data: "a\nb<&>\u{2028}é")
        let expected = #"{"channel":"room \"1\"","data":"a\nb\u003c\u0026\u003e\u2028é"}"#
        #expect(String(decoding: json, as: UTF8.self) == expected)
        let message = json.withUnsafeBytes { ClientMessageReader.read($0) }
        guard case .success(let read) = message else {
            Issue.record("server refused the message")
            return
        }
        #expect(read.channel == Array("room \"1\"".utf8))
        #expect(read.data == Array("a\nb<&>\u{2028}é".utf8))
    }
}
