import CSystem

/// Compresses messages as a permessage-deflate peer may (RFC 7692 section 7.2.1), including what the
/// server never does itself: keep the context from one message to the next, end a message with a final
/// block. One per window size and level for the whole run: zlib's state is large, a reset is cheap.
final class MessageCompressor {
    private var stream = z_stream()
    private let keepsContext: Bool

    private init(windowBits: Int, level: Int32, contextTakeover: Bool) {
        keepsContext = contextTakeover
        let status = CSystem_deflateInit2(&stream, level, -Int32(windowBits), 8)
        precondition(status == Z_OK, "deflateInit2 failed: \(status)")
    }

    deinit { deflateEnd(&stream) }

    nonisolated(unsafe) private static var made: [Int: MessageCompressor] = [:]

    /// A compressor with a fresh stream. `windowBits` 9 to 15, `level` 0 to 9.
    static func fresh(windowBits: Int, level: Int32, contextTakeover: Bool) -> MessageCompressor {
        let key = windowBits * 100 + Int(level) * 2 + (contextTakeover ? 1 : 0)
        let compressor =
            made[key] ?? MessageCompressor(windowBits: windowBits, level: level, contextTakeover: contextTakeover)
        made[key] = compressor
        deflateReset(&compressor.stream)
        return compressor
    }

    /// One message's payload: flushed to a byte boundary with its `00 00 ff ff` removed, or, when `final`,
    /// a whole stream ending in a final block (the next message then starts a new stream).
    func compress(_ message: [UInt8], final: Bool) -> [UInt8] {
        if !keepsContext { deflateReset(&stream) }
        var output: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        var input = message
        input.withUnsafeMutableBytes { source in
            stream.next_in = source.baseAddress?.assumingMemoryBound(to: Bytef.self)
            stream.avail_in = uInt(source.count)
            while true {
                let (code, produced) = chunk.withUnsafeMutableBytes { out -> (Int32, Int) in
                    stream.next_out = out.baseAddress!.assumingMemoryBound(to: Bytef.self)
                    stream.avail_out = uInt(out.count)
                    let code = deflate(&stream, final ? Z_FINISH : Z_SYNC_FLUSH)
                    return (code, out.count - Int(stream.avail_out))
                }
                output += chunk[..<produced]
                precondition(code == Z_OK || code == Z_STREAM_END || code == Z_BUF_ERROR, "deflate failed: \(code)")
                // Done when zlib left room in the output: everything, the flush included, is out.
                if code == Z_STREAM_END || (!final && produced < chunk.count) { break }
            }
            stream.next_in = nil
            stream.next_out = nil
        }
        if final {
            deflateReset(&stream)
            return output
        }
        // zlib writes nothing for an empty message right after a flush; RFC 7692 section 7.2.1 then has the
        // sender append an empty stored block, whose first byte is all that is left once the tail goes.
        if output.isEmpty { return [0x00] }
        precondition(
            output.suffix(4).elementsEqual([0x00, 0x00, 0xFF, 0xFF]), "a sync flush ends in an empty stored block")
        return Array(output.dropLast(4))
    }
}
