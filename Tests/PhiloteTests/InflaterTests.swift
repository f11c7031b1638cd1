import CSystem
import Testing

@testable import Philote

/// `Inflater.inflate(_:into:)` (a kept buffer, as `philote bench` uses) against `decompress` (an array per message,
/// as the server uses): one zlib loop behind both.
struct InflaterTests {
    /// Text that compresses but needs many turns of `decompress`'s 16 KiB buffer.
    static let text: [UInt8] = (0..<100_000).map { UInt8(ascii: "a") + UInt8(($0 * 7 + $0 / 13) % 26) }

    @Test func aMessageFitsWithAByteToSpare() {
        let compressed = Self.text.withUnsafeBytes { Deflater().compress($0) }
        let inflater = Inflater(contextTakeover: false)
        for (capacity, fits) in [(Self.text.count + 1, true), (Self.text.count, false), (1000, false)] {
            let output = UnsafeMutableRawBufferPointer.allocate(byteCount: capacity, alignment: 1)
            defer { output.deallocate() }
            let result = compressed.withUnsafeBytes { inflater.inflate($0, into: output) }
            switch result {
            case .success(let message):
                #expect(fits)
                #expect(message.baseAddress == UnsafeRawPointer(output.baseAddress))
                #expect(Array(message) == Self.text)
            case .failure(let failure):
                #expect(!fits && failure == .tooBig, "capacity \(capacity)")
            }
        }
    }

    @Test func agreesWithDecompressAtEveryLimit() {
        let compressed = Self.text.withUnsafeBytes { Deflater().compress($0) }
        let inflater = Inflater(contextTakeover: false)
        for limit in [Self.text.count - 1, Self.text.count, 16 * 1024, 16 * 1024 - 1, 0] {
            let array = compressed.withUnsafeBytes { inflater.decompress($0, limit: limit) }
            let output = UnsafeMutableRawBufferPointer.allocate(byteCount: limit + 1, alignment: 1)
            defer { output.deallocate() }
            let kept = compressed.withUnsafeBytes { inflater.inflate($0, into: output).map(Array.init) }
            #expect(array == kept, "limit \(limit)")
            #expect(array == (limit >= Self.text.count ? .success(Self.text) : .failure(.tooBig)), "limit \(limit)")
        }
    }

    @Test func aFailedMessageLeavesTheNextOneWhole() {
        let good = Array("{\"channel\":\"room\",\"data\":\"hello\"}".utf8)
        let compressed = good.withUnsafeBytes { Deflater().compress($0) }
        let inflater = Inflater(contextTakeover: false)
        let output = UnsafeMutableRawBufferPointer.allocate(byteCount: 4096, alignment: 1)
        defer { output.deallocate() }
        let corrupt: [UInt8] = [0xFF, 0xFF, 0xFF, 0xFF]
        #expect(corrupt.withUnsafeBytes { inflater.inflate($0, into: output).map(Array.init) } == .failure(.corrupt))
        #expect(compressed.withUnsafeBytes { inflater.inflate($0, into: output).map(Array.init) } == .success(good))
        let small = UnsafeMutableRawBufferPointer.allocate(byteCount: 4, alignment: 1)
        defer { small.deallocate() }
        #expect(compressed.withUnsafeBytes { inflater.inflate($0, into: small).map(Array.init) } == .failure(.tooBig))
        #expect(compressed.withUnsafeBytes { inflater.decompress($0, limit: 100) } == .success(good))
    }

    @Test func bytesPastTheLimitMakeACorruptMessageTooBig() {
        // A stored block of ten bytes, then a block of the reserved type 3: zlib writes the ten bytes and then
        // fails. Past the limit it is too big (what was inflated counts first, as in one whole buffer), else corrupt.
        let message: [UInt8] = [0x00, 0x0A, 0x00, 0xF5, 0xFF] + Array("0123456789".utf8) + [0x07]
        let inflater = Inflater(contextTakeover: false)
        for (limit, expected) in [(5, Inflater.Failure.tooBig), (9, .tooBig), (10, .corrupt), (20, .corrupt)] {
            #expect(message.withUnsafeBytes { inflater.decompress($0, limit: limit) } == .failure(expected))
            let output = UnsafeMutableRawBufferPointer.allocate(byteCount: limit + 1, alignment: 1)
            defer { output.deallocate() }
            let kept = message.withUnsafeBytes { inflater.inflate($0, into: output).map(Array.init) }
            #expect(kept == .failure(expected), "limit \(limit)")
        }
    }

    @Test func whatFollowsAFinalBlockIsIgnored() {
        // A stored block with BFINAL set holding "abc", then bytes that are not deflate data (RFC 7692 7.2.3.4).
        let message: [UInt8] = [0x01, 0x03, 0x00, 0xFC, 0xFF, 0x61, 0x62, 0x63, 0xFF, 0xFF, 0xFF]
        let inflater = Inflater(contextTakeover: true)
        let output = UnsafeMutableRawBufferPointer.allocate(byteCount: 16, alignment: 1)
        defer { output.deallocate() }
        for _ in 0..<2 {
            let kept = message.withUnsafeBytes { inflater.inflate($0, into: output).map(Array.init) }
            #expect(kept == .success(Array("abc".utf8)))
            #expect(message.withUnsafeBytes { inflater.decompress($0, limit: 3) } == .success(Array("abc".utf8)))
        }
    }

    @Test func contextTakeoverCarriesTheWindowAcrossMessages() {
        // Two messages of one raw deflate stream, each sync-flushed with its 00 00 ff ff removed: the second
        // refers back into the first.
        let first = Array(String(repeating: "window ", count: 40).utf8)
        let second = Array(String(repeating: "window ", count: 41).utf8)
        var stream = z_stream()
        #expect(CSystem_deflateInit2(&stream, 6, -15, 8) == Z_OK)
        defer { deflateEnd(&stream) }
        func compress(_ input: [UInt8]) -> [UInt8] {
            var output = [UInt8](repeating: 0, count: 1024)
            var input = input
            let produced = input.withUnsafeMutableBytes { inBytes in
                output.withUnsafeMutableBytes { outBytes -> Int in
                    stream.next_in = inBytes.baseAddress!.assumingMemoryBound(to: Bytef.self)
                    stream.avail_in = uInt(inBytes.count)
                    stream.next_out = outBytes.baseAddress!.assumingMemoryBound(to: Bytef.self)
                    stream.avail_out = uInt(outBytes.count)
                    #expect(deflate(&stream, Z_SYNC_FLUSH) == Z_OK)
                    return outBytes.count - Int(stream.avail_out)
                }
            }
            return Array(output[..<(produced - 4)])
        }
        let messages = [compress(first), compress(second)]
        #expect(messages[1].count < 16)  // only back-references: it needs the first message's window
        let keeping = Inflater(contextTakeover: true)
        let output = UnsafeMutableRawBufferPointer.allocate(byteCount: 1024, alignment: 1)
        defer { output.deallocate() }
        #expect(messages[0].withUnsafeBytes { keeping.inflate($0, into: output).map(Array.init) } == .success(first))
        #expect(messages[1].withUnsafeBytes { keeping.inflate($0, into: output).map(Array.init) } == .success(second))
        // Without context the second message alone does not decode to the text.
        let fresh = Inflater(contextTakeover: false)
        #expect(messages[1].withUnsafeBytes { fresh.inflate($0, into: output).map(Array.init) } != .success(second))
    }
}
