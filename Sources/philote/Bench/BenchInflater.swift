import CSystem

/// Inflates the compressed deliveries of one loop's subscribers (the server never takes over context: each message
/// is a stream of its own) into one buffer kept for the loop's life, as wsload does: no allocation per message.
/// The project's `Inflater` returns a fresh array per message, which on the tool's one core cost about a tenth of
/// its deflate rate.
final class BenchInflater {
    private var stream = z_stream()
    private let output: UnsafeMutableRawBufferPointer
    private static let tail: [UInt8] = [0x00, 0x00, 0xFF, 0xFF]

    init(capacity: Int = 1 << 20) {
        output = .allocate(byteCount: capacity, alignment: 16)
        let status = CSystem_inflateInit2(&stream, -15)
        precondition(status == Z_OK, "inflateInit2 failed: \(status)")
    }

    deinit {
        inflateEnd(&stream)
        output.deallocate()
    }

    /// The message, valid until the next call; nil when it is corrupt or inflates past the buffer.
    func inflate(_ input: UnsafeRawBufferPointer) -> UnsafeRawBufferPointer? {
        inflateReset(&stream)
        stream.next_out = output.baseAddress!.assumingMemoryBound(to: Bytef.self)
        stream.avail_out = uInt(output.count)
        defer {
            stream.next_in = nil
            stream.next_out = nil
        }
        for part in 0..<2 {
            let ended: Bool? = Self.tail.withUnsafeBytes { tail in
                let source = part == 0 ? input : tail
                stream.next_in = UnsafeMutablePointer(mutating: source.baseAddress?.assumingMemoryBound(to: Bytef.self))
                stream.avail_in = uInt(source.count)
                switch CSystem.inflate(&stream, Z_SYNC_FLUSH) {
                case Z_STREAM_END: return true
                case Z_OK, Z_BUF_ERROR: return stream.avail_out == 0 ? nil : false
                default: return nil
                }
            }
            guard let ended else { return nil }
            if ended { break }
        }
        return UnsafeRawBufferPointer(start: output.baseAddress, count: output.count - Int(stream.avail_out))
    }
}
