import CSystem
import Philote

/// A second, plainer decompressor to hold Inflater against: zlib fed the message and the `00 00 ff ff`
/// tail in one buffer, into one output buffer one byte larger than the limit, in as few calls as zlib
/// needs. Inflater works in 16 KiB chunks and feeds the tail separately; the results must not differ.
final class ReferenceInflater {
    private var stream = z_stream()
    private let keepsContext: Bool

    init(contextTakeover: Bool) {
        keepsContext = contextTakeover
        let status = CSystem_inflateInit2(&stream, -15)
        precondition(status == Z_OK, "inflateInit2 failed: \(status)")
    }

    deinit { inflateEnd(&stream) }

    /// What Inflater must answer for `message` with `limit`: the output, `.tooBig` when more than `limit`
    /// bytes come out before the stream ends or fails, `.corrupt` when it fails first.
    func decompress(_ message: [UInt8], limit: Int) -> Result<[UInt8], Inflater.Failure> {
        if !keepsContext { inflateReset(&stream) }
        var input = message
        input += [0x00, 0x00, 0xFF, 0xFF]
        var output = [UInt8](repeating: 0, count: limit + 1)
        var produced = 0
        var code = Z_OK
        input.withUnsafeMutableBytes { source in
            output.withUnsafeMutableBytes { target in
                stream.next_in = source.baseAddress!.assumingMemoryBound(to: Bytef.self)
                stream.avail_in = uInt(source.count)
                stream.next_out = target.baseAddress!.assumingMemoryBound(to: Bytef.self)
                stream.avail_out = uInt(target.count)
                repeat {
                    let before = (stream.avail_in, stream.avail_out)
                    code = inflate(&stream, Z_SYNC_FLUSH)
                    if (stream.avail_in, stream.avail_out) == before { break }
                } while code == Z_OK && stream.avail_in > 0 && stream.avail_out > 0
                produced = target.count - Int(stream.avail_out)
                stream.next_in = nil
                stream.next_out = nil
            }
        }
        if produced > limit {
            inflateReset(&stream)
            return .failure(.tooBig)
        }
        switch code {
        case Z_OK, Z_BUF_ERROR:
            return .success(Array(output[..<produced]))
        case Z_STREAM_END:
            // A final block ends the peer's stream; its next message starts a new one.
            inflateReset(&stream)
            return .success(Array(output[..<produced]))
        default:
            inflateReset(&stream)
            return .failure(.corrupt)
        }
    }
}
