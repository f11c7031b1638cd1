import Testing

@testable import Philote

/// permessage-deflate (RFC 7692): the negotiation matrix, the RFC's own examples (section 7.2.3), and the
/// failure rules (RSV1 misuse, corrupt data, compression bombs).
@Suite struct PerMessageDeflateTests {
    // MARK: Negotiation

    @Test func acceptsTheBrowserOffer() throws {
        let agreed = try #require(DeflateParameters.negotiate(["permessage-deflate; client_max_window_bits"]))
        #expect(agreed.response == "permessage-deflate; server_no_context_takeover")
        #expect(agreed.serverWindowBits == 15 && !agreed.clientNoContextTakeover)
    }

    @Test func echoesClientNoContextTakeoverAndServerWindowBits() throws {
        let agreed = try #require(
            DeflateParameters.negotiate([
                "permessage-deflate; client_no_context_takeover; server_no_context_takeover; server_max_window_bits=10"
            ]))
        #expect(agreed.clientNoContextTakeover && agreed.serverWindowBits == 10)
        #expect(
            agreed.response
                == "permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=10")
    }

    @Test(arguments: [
        "permessage-deflate; unknown_parameter",
        "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
        "permessage-deflate; server_max_window_bits=16",
        "permessage-deflate; server_max_window_bits=7",
        "permessage-deflate; server_max_window_bits",
        "permessage-deflate; server_max_window_bits=010",
        "permessage-deflate; client_max_window_bits=20",
        "permessage-deflate; server_no_context_takeover=1",
        "permessage-deflate; client_no_context_takeover=yes",
        // zlib cannot write raw deflate with a 256-byte window: declined, never answered with 9.
        "permessage-deflate; server_max_window_bits=8",
        "x-webkit-deflate-frame",
        "permessage-deflate; server_max_window_bits=\"1 0\"",
    ])
    func declinesBadOffers(_ offer: String) {
        #expect(DeflateParameters.negotiate([offer]) == nil)
    }

    @Test func takesTheFirstAcceptableOfferAcrossListsAndHeaders() throws {
        let agreed = try #require(
            DeflateParameters.negotiate([
                "foo, permessage-deflate; server_max_window_bits=8",
                "permessage-deflate; server_max_window_bits=\"12\", permessage-deflate",
            ]))
        #expect(agreed.serverWindowBits == 12)
        #expect(agreed.response == "permessage-deflate; server_no_context_takeover; server_max_window_bits=12")
    }

    @Test func clientMaxWindowBitsWithOrWithoutValue() {
        #expect(DeflateParameters.negotiate(["permessage-deflate; client_max_window_bits=8"]) != nil)
        #expect(DeflateParameters.negotiate(["permessage-deflate; client_max_window_bits"]) != nil)
    }

    @Test func parsesQuotedValuesAndEmptyElements() {
        let offers = ExtensionOffer.parse([" , a; b=\"x\\\"y\"; c , d"])
        #expect(offers.count == 2)
        #expect(offers[0] == nil)  // a quoted value that is not a token after unquoting
        #expect(offers[1] == ExtensionOffer(name: "d", parameters: []))
    }

    // MARK: RFC 7692 section 7.2.3

    static let helloCompressed: [UInt8] = [0xF2, 0x48, 0xCD, 0xC9, 0xC9, 0x07, 0x00]

    @Test func compressesHelloLikeTheRFC() {
        let deflater = Deflater()
        let out = Array("Hello".utf8).withUnsafeBytes { deflater.compress($0) }
        #expect(out == Self.helloCompressed)
        // No context takeover: the same message compresses the same way again.
        #expect(Array("Hello".utf8).withUnsafeBytes { deflater.compress($0) } == Self.helloCompressed)
    }

    func read(_ frames: [[UInt8]], contextTakeover: Bool = true, limit: Int = 65536) -> (
        [RecordingSink.Event], WebSocketReader.Stop?
    ) {
        var reader = WebSocketReader(maxMessageSize: limit)
        reader.enableDeflate(contextTakeover: contextTakeover)
        let sink = RecordingSink()
        var bytes = frames.flatMap { $0 }
        let outcome = bytes.withUnsafeMutableBytes { reader.read($0, into: sink) }
        return (sink.events, outcome.stop)
    }

    @Test func inflatesTheRFCExamples() {
        let hello = RecordingSink.Event.message(.text, Array("Hello".utf8))
        // 7.2.3.1: a single compressed frame.
        #expect(read([clientFrame(0x1, Self.helloCompressed, rsv: 0x40)]).0 == [hello])
        // 7.2.3.1: the same message in two fragments, RSV1 on the first only.
        let fragments = [
            clientFrame(0x1, [0xF2, 0x48, 0xCD], fin: false, rsv: 0x40), clientFrame(0x0, [0xC9, 0xC9, 0x07, 0x00]),
        ]
        #expect(read(fragments).0 == [hello])
        // 7.2.3.2: the second "Hello" refers back into the first message's window (context takeover).
        let shared = [clientFrame(0x1, Self.helloCompressed, rsv: 0x40), clientFrame(0x1, [0xF2, 0x00, 0x11, 0x00, 0x00], rsv: 0x40)]
        #expect(read(shared).0 == [hello, hello])
        // ...and with no context takeover both are compressed alike.
        let separate = [clientFrame(0x1, Self.helloCompressed, rsv: 0x40), clientFrame(0x1, Self.helloCompressed, rsv: 0x40)]
        #expect(read(separate, contextTakeover: false).0 == [hello, hello])
        // 7.2.3.3: a stored (uncompressed) DEFLATE block.
        let stored: [UInt8] = [0x00, 0x05, 0x00, 0xFA, 0xFF, 0x48, 0x65, 0x6C, 0x6C, 0x6F, 0x00]
        #expect(read([clientFrame(0x1, stored, rsv: 0x40)]).0 == [hello])
        // 7.2.3.4: BFINAL set.
        #expect(read([clientFrame(0x1, [0xF3, 0x48, 0xCD, 0xC9, 0xC9, 0x07, 0x00, 0x00], rsv: 0x40)]).0 == [hello])
        // 7.2.3.5: two DEFLATE blocks in one message.
        let twoBlocks: [UInt8] = [0xF2, 0x48, 0x05, 0x00, 0x00, 0x00, 0xFF, 0xFF, 0xCA, 0xC9, 0xC9, 0x07, 0x00]
        #expect(read([clientFrame(0x1, twoBlocks, rsv: 0x40)]).0 == [hello])
    }

    @Test func uncompressedMessagesStillPassWhenNegotiated() {
        #expect(read([clientFrame(0x2, [1, 2, 3])]).0 == [.message(.binary, [1, 2, 3])])
    }

    // MARK: Failures

    @Test func rsv1OnControlOrContinuationIsAProtocolError() {
        let (_, ping) = read([clientFrame(0x9, [], rsv: 0x40)])
        #expect(ping == .failure(.protocolViolation("reserved bits set on a control frame")))
        let (_, continuation) = read([
            clientFrame(0x1, [0xF2, 0x48, 0xCD], fin: false, rsv: 0x40),
            clientFrame(0x0, [0xC9, 0xC9, 0x07, 0x00], rsv: 0x40),
        ])
        #expect(continuation == .failure(.protocolViolation("reserved bits set on a continuation frame")))
    }

    @Test func rsv1WithoutNegotiationIsAProtocolError() {
        var reader = WebSocketReader(maxMessageSize: 65536)
        let sink = RecordingSink()
        var bytes = clientFrame(0x1, Self.helloCompressed, rsv: 0x40)
        let outcome = bytes.withUnsafeMutableBytes { reader.read($0, into: sink) }
        #expect(outcome.stop == .failure(.protocolViolation("reserved bits set")))
    }

    @Test func corruptDataIs1007() {
        let (_, stop) = read([clientFrame(0x1, [0xFF, 0xFF, 0xFF, 0xFF], rsv: 0x40)])
        #expect(stop == .failure(.invalidCompressedData))
        #expect(ProtocolError.invalidCompressedData.closeCode == .invalidPayload)
    }

    @Test func invalidUTF8InsideCompressedTextIs1007() {
        let bad: [UInt8] = [0xC0, 0x80, 0x41]
        let compressed = bad.withUnsafeBytes { Deflater().compress($0) }
        #expect(read([clientFrame(0x1, compressed, rsv: 0x40)]).1 == .failure(.invalidUTF8))
        // The same bytes as binary are fine.
        #expect(read([clientFrame(0x2, compressed, rsv: 0x40)]).0 == [.message(.binary, bad)])
    }

    @Test func aCompressionBombStopsAtTheLimit() {
        // 10 MiB of zeros compress to about 10 KiB; the limit is 64 KiB.
        let zeros = [UInt8](repeating: 0, count: 10 << 20)
        let bomb = zeros.withUnsafeBytes { Deflater().compress($0) }
        #expect(bomb.count < 65536)
        #expect(read([clientFrame(0x2, bomb, rsv: 0x40)]).1 == .failure(.messageTooBig))
        let inflater = Inflater(contextTakeover: false)
        #expect(bomb.withUnsafeBytes { inflater.decompress($0, limit: 1000) } == .failure(.tooBig))
    }

    @Test func roundTripsEveryWindowSize() {
        let text = Array(String(repeating: "chatty JSON {\"channel\":\"room\"} ", count: 200).utf8)
        for bits in 9...15 {
            let compressed = text.withUnsafeBytes { Deflater(windowBits: bits).compress($0) }
            #expect(compressed.count < text.count / 4)
            let inflated = compressed.withUnsafeBytes { Inflater(contextTakeover: false).decompress($0, limit: 1 << 20) }
            #expect(inflated == .success(text))
        }
    }
}
