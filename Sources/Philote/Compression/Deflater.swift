import CSystem

/// Compresses whole messages for permessage-deflate with no context takeover (RFC 7692 section 7.2.1):
/// each message is a fresh raw deflate stream flushed with Z_SYNC_FLUSH, its final `00 00 ff ff` removed.
/// One per loop and window size; the zlib state (about 256 KiB) is reused, never per connection.
public final class Deflater {
    private var stream = z_stream()
    public let windowBits: Int

    /// `windowBits` 9 to 15 (zlib cannot write raw streams with an 8-bit window).
    public init(windowBits: Int = 15, level: Int32 = 6) {
        precondition((9...15).contains(windowBits))
        self.windowBits = windowBits
        let status = CSystem_deflateInit2(&stream, level, -Int32(windowBits), 8)
        precondition(status == Z_OK, "deflateInit2 failed: \(status)")
    }

    deinit { deflateEnd(&stream) }

    /// The compressed payload of one message.
    public func compress(_ input: UnsafeRawBufferPointer) -> [UInt8] {
        deflateReset(&stream)
        // deflateBound plus the sync flush marker: one pass always suffices.
        let capacity = Int(deflateBound(&stream, uLong(input.count))) + 16
        var output = [UInt8](repeating: 0, count: capacity)
        let produced = output.withUnsafeMutableBytes { out -> Int in
            stream.next_in = UnsafeMutablePointer(mutating: input.baseAddress?.assumingMemoryBound(to: Bytef.self))
            stream.avail_in = uInt(input.count)
            stream.next_out = out.baseAddress!.assumingMemoryBound(to: Bytef.self)
            stream.avail_out = uInt(out.count)
            let status = deflate(&stream, Z_SYNC_FLUSH)
            precondition(status == Z_OK && stream.avail_in == 0, "deflate failed: \(status)")
            stream.next_in = nil
            stream.next_out = nil
            return out.count - Int(stream.avail_out)
        }
        // A sync flush always ends in an empty stored block, 00 00 ff ff: the receiver appends it back.
        output.removeSubrange((produced - 4)...)
        return output
    }
}
