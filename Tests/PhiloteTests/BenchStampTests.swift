import Testing

@testable import Philote

@Suite struct BenchStampTests {
    /// Unmasks a frame written by `BenchFrameWriter` with the server's parser.
    private func payload(of frame: [UInt8]) -> [UInt8]? {
        var bytes = frame
        return bytes.withUnsafeMutableBytes { buffer -> [UInt8]? in
            guard case .frame(let header) = FrameParser(maxPayloadLength: 1 << 20).parse(buffer),
                header.frameLength == frame.count, header.opcode == .text
            else { return nil }
            return Array(buffer[header.headerLength..<header.frameLength])
        }
    }

    @Test(arguments: [40, 100, 200, 70_000])
    func aWrittenStampIsFoundInTheServersRelay(size: Int) throws {
        var writer = BenchFrameWriter(channel: "bench0", dataSize: size, seed: 7)
        let stamp = BenchStamp(sentAt: 123_456_789_012, measured: true, sequence: 42, publisher: 3)
        var out: [UInt8] = []
        writer.append(stamp, to: &out)
        let json = try #require(payload(of: out))
        let text = String(decoding: json, as: UTF8.self)
        #expect(text.hasPrefix(#"{"channel":"bench0","data":"T123456789012R-S42-P3-xx"#))
        #expect(text.hasSuffix(#"x"}"#))
        let data = text.split(separator: "\"")[7]
        #expect(data.count == size)
        // What Philote relays: an issuer first, then the same channel and data.
        let relayed = Array(#"{"issuer":"abc","#.utf8) + json.dropFirst() + [0x0A]
        #expect(relayed.withUnsafeBytes { BenchStamp.find(in: $0) } == stamp)
        #expect(relayed.withUnsafeBytes { BenchStamp.find(in: $0, dataSize: size) } == stamp)
    }

    @Test(arguments: [40, 100, 5000])
    func aCompressedPublishInflatesToThePlainOne(size: Int) throws {
        let stamp = BenchStamp(sentAt: 987_654_321, measured: false, sequence: 7, publisher: 1)
        var plainWriter = BenchFrameWriter(channel: "bench1", dataSize: size, seed: 3)
        var plain: [UInt8] = []
        plainWriter.append(stamp, to: &plain)
        var writer = BenchFrameWriter(channel: "bench1", dataSize: size, seed: 3)
        var frame: [UInt8] = []
        writer.appendCompressed(stamp, with: Deflater(windowBits: 15, level: -1), to: &frame)
        #expect(frame[0] == 0xC1)  // FIN, RSV1 (compressed), text
        var parser = FrameParser(maxPayloadLength: 1 << 20)
        parser.allowedRSV = 0x40
        var bytes = frame
        let compressed = try #require(
            bytes.withUnsafeMutableBytes { buffer -> [UInt8]? in
                guard case .frame(let header) = parser.parse(buffer), header.frameLength == frame.count else { return nil }
                return Array(buffer[header.headerLength..<header.frameLength])
            })
        #expect(compressed.count < (size > 100 ? size / 4 : size + 60))
        let text = compressed.withUnsafeBytes { Inflater(contextTakeover: false).decompress($0, limit: 1 << 20) }
        #expect(try text.get() == payload(of: plain))
    }

    @Test func warmUpMessagesAreMarked() {
        let text = Array(#"{"channel":"c","data":"T99W-S0-P12-xxxx"}"#.utf8)
        let stamp = text.withUnsafeBytes { BenchStamp.find(in: $0) }
        #expect(stamp == BenchStamp(sentAt: 99, measured: false, sequence: 0, publisher: 12))
    }

    @Test func messagesWithoutAStampAreNotOurs() {
        for text in [#"{"error":"nope"}"#, #"{"channel":"c","data":"hello"}"#, #"{"data":"T12X-S1-P1-"}"#, ""] {
            let found = Array(text.utf8).withUnsafeBytes { BenchStamp.find(in: $0) }
            #expect(found == nil, "\(text)")
        }
    }

    @Test func severalFramesGoBackToBack() {
        var writer = BenchFrameWriter(channel: "x", dataSize: 50, seed: 1)
        var out: [UInt8] = []
        for sequence in 0..<3 {
            writer.append(BenchStamp(sentAt: 1, measured: false, sequence: UInt64(sequence), publisher: 0), to: &out)
        }
        #expect(out.count == 3 * (out.count / 3))
        #expect(payload(of: Array(out.prefix(out.count / 3))) != nil)
    }

    @Test func theReportIsValidJSONShapedText() {
        var tally = BenchTally()
        tally.closeCodes = [1008: 2]
        tally.deliveredMeasured = 10
        var latency = LatencyHistogram()
        latency.record(1_500_000)
        let report = BenchReport(
            url: "ws://h/", settings: BenchSettings(), tally: tally, latency: latency, connectSeconds: 1,
            measuredSeconds: 2, expected: 12, lost: 2, duplicates: 0, interrupted: false)
        let json = report.json()
        #expect(json.contains(#""lost":2"#))
        #expect(json.contains(#""close_codes":{"1008":2}"#))
        #expect(json.contains(#""delivered_per_second":5.0"#))
        #expect(json.contains(#""max":1500.0"#))
        #expect(report.table().contains("1008 x2"))
        #expect(BenchReport.fixed(0.0005, 3) == "0.001")
        #expect(BenchReport.fixed(12.3456, 2) == "12.35")
    }
}
