import CSystem

/// Decompresses permessage-deflate messages (RFC 7692 section 7.2.2) with a hard cap on the output, so a
/// compression bomb costs at most `limit` bytes before it is refused. With context takeover the stream
/// carries its window from one message to the next; otherwise it is reset per message.
public final class Inflater {
    public enum Failure: Error, Equatable {
        case tooBig
        case corrupt
    }

    private var stream = z_stream()
    private let keepsContext: Bool

    public init(contextTakeover: Bool) {
        keepsContext = contextTakeover
        // Always the largest window: it decodes any stream written with a smaller one.
        let status = CSystem_inflateInit2(&stream, -15)
        precondition(status == Z_OK, "inflateInit2 failed: \(status)")
    }

    deinit { inflateEnd(&stream) }

    private static let tail: [UInt8] = [0x00, 0x00, 0xFF, 0xFF]

    /// The decompressed message, at most `limit` bytes.
    public func decompress(_ input: UnsafeRawBufferPointer, limit: Int) -> Result<[UInt8], Failure> {
        if !keepsContext { inflateReset(&stream) }
        var output: [UInt8] = []
        // Sized to the message: a small one (the common case) zero-fills 1 KiB per call, not 16; a large one takes
        // more turns of the loop below, never a different result.
        let chunk = min(16 * 1024, max(1024, input.count * 4))
        var buffer = [UInt8](repeating: 0, count: chunk)
        var ended = false
        for part in 0..<2 where !ended {
            let status: Result<Void, Failure> = Self.tail.withUnsafeBytes { tail in
                let source = part == 0 ? input : tail
                stream.next_in = UnsafeMutablePointer(mutating: source.baseAddress?.assumingMemoryBound(to: Bytef.self))
                stream.avail_in = uInt(source.count)
                defer { stream.next_in = nil }
                while true {
                    let (code, produced) = buffer.withUnsafeMutableBytes { out -> (Int32, Int) in
                        stream.next_out = out.baseAddress!.assumingMemoryBound(to: Bytef.self)
                        stream.avail_out = uInt(out.count)
                        let code = inflate(&stream, Z_SYNC_FLUSH)
                        stream.next_out = nil
                        return (code, out.count - Int(stream.avail_out))
                    }
                    if output.count + produced > limit { return .failure(.tooBig) }
                    output.append(contentsOf: buffer[..<produced])
                    switch code {
                    case Z_OK:
                        // More output may be pending even with no input left; stop only when zlib
                        // neither consumed nor produced anything more.
                        if stream.avail_in == 0 && produced < chunk { return .success(()) }
                    case Z_BUF_ERROR:
                        return .success(())  // no progress possible: all input used
                    case Z_STREAM_END:
                        // A final block (BFINAL) ends the stream: what follows in this message, the
                        // appended tail included, is not deflate data and is ignored (RFC 7692 7.2.3.4).
                        inflateReset(&stream)
                        ended = true
                        return .success(())
                    default:
                        return .failure(.corrupt)
                    }
                }
            }
            if case .failure(let failure) = status {
                inflateReset(&stream)
                return .failure(failure)
            }
        }
        return .success(output)
    }
}
