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

    /// The decompressed message, at most `limit` bytes, in an array of its own.
    public func decompress(_ input: UnsafeRawBufferPointer, limit: Int) -> Result<[UInt8], Failure> {
        var message: [UInt8] = []
        // Sized to the message: a small one (the common case) zero-fills 1 KiB per call, not 16; a large one takes
        // more turns of the loop in `run`, never a different result.
        var buffer = [UInt8](repeating: 0, count: min(16 * 1024, max(1024, input.count * 4)))
        let failure = buffer.withUnsafeMutableBytes { output in
            run(input, output: output) { stretch in
                guard message.count + stretch.count <= limit else { return false }
                message.append(contentsOf: stretch)
                return true
            }
        }
        return failure.map { .failure($0) } ?? .success(message)
    }

    /// The decompressed message in the first bytes of `output`, a buffer the caller keeps (nothing is allocated
    /// per message); `.tooBig` when it does not fit with a byte to spare.
    public func inflate(_ input: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer)
        -> Result<UnsafeRawBufferPointer, Failure>
    {
        var message = UnsafeRawBufferPointer(start: output.baseAddress, count: 0)
        let failure = run(input, output: output) { stretch in
            // A full buffer is handed over only when more may follow: the message does not fit.
            guard stretch.count < output.count else { return false }
            message = stretch
            return true
        }
        return failure.map { .failure($0) } ?? .success(message)
    }

    /// Runs one message (`input`, then the four bytes RFC 7692 has the sender strip) through zlib into `output`,
    /// handing `take` each stretch written: the whole buffer each time it fills (after which it is written from
    /// its start again), then the rest at the end. `take` returns false to refuse the message as too big.
    private func run(
        _ input: UnsafeRawBufferPointer, output: UnsafeMutableRawBufferPointer,
        take: (UnsafeRawBufferPointer) -> Bool
    ) -> Failure? {
        if !keepsContext { inflateReset(&stream) }
        defer {
            stream.next_in = nil
            stream.next_out = nil
        }
        var written = 0
        parts: for part in 0..<2 {
            let step: Step = Self.tail.withUnsafeBytes { tail in
                let source = part == 0 ? input : tail
                stream.next_in = UnsafeMutablePointer(mutating: source.baseAddress?.assumingMemoryBound(to: Bytef.self))
                stream.avail_in = uInt(source.count)
                while true {
                    stream.next_out = (output.baseAddress! + written).assumingMemoryBound(to: Bytef.self)
                    stream.avail_out = uInt(output.count - written)
                    let code = CSystem.inflate(&stream, Z_SYNC_FLUSH)
                    written = output.count - Int(stream.avail_out)
                    switch code {
                    case Z_OK, Z_BUF_ERROR:
                        if stream.avail_out == 0 {
                            // Full: more output may be pending even with no input left.
                            guard take(UnsafeRawBufferPointer(output)) else { return .tooBig }
                            written = 0
                        } else if code == Z_BUF_ERROR || stream.avail_in == 0 {
                            return .inputUsed  // Z_BUF_ERROR: no progress possible, all input used
                        }
                    case Z_STREAM_END:
                        // A final block (BFINAL) ends the stream: what follows in this message, the appended tail
                        // included, is not deflate data and is ignored (RFC 7692 7.2.3.4).
                        return .streamEnded
                    default:
                        // What zlib wrote before it found the error counts first: past the limit, a message is
                        // too big whatever follows.
                        return take(UnsafeRawBufferPointer(rebasing: output[..<written])) ? .corrupt : .tooBig
                    }
                }
            }
            switch step {
            case .inputUsed:
                continue
            case .streamEnded:
                inflateReset(&stream)
                break parts
            case .tooBig:
                inflateReset(&stream)
                return .tooBig
            case .corrupt:
                inflateReset(&stream)
                return .corrupt
            }
        }
        return take(UnsafeRawBufferPointer(rebasing: output[..<written])) ? nil : .tooBig
    }

    /// Where one part of a message left zlib.
    private enum Step {
        case inputUsed
        case streamEnded
        case tooBig
        case corrupt
    }
}
