import FuzzSupport
import Philote

/// Drives permessage-deflate decompression (Inflater, and WebSocketReader where the decompressed-size limit
/// is enforced) with compressed payloads, from raw bytes and from real deflate streams.
///
/// The first two bytes are InflateSettings (context takeover, mode, limit, compressor window and level);
/// the mode chooses how the rest is read:
/// - 0, RawStreamCheck: arbitrary payloads, Inflater against a one-buffer zlib reference;
/// - 1, RoundTripCheck: plain messages compressed as a peer would, which must come back exactly or be
///   refused as too big exactly when over the limit;
/// - 2 and 3, FrameStreamCheck: messages framed and read by WebSocketReader, every event and the stop
///   predicted, so that a refused message is never partly delivered.
/// Every mode checks that nothing longer than the limit comes out.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    var input = FuzzInput(UnsafeBufferPointer(start: data, count: size))
    let settings = InflateSettings(&input)
    switch settings.mode {
    case 0: RawStreamCheck.run(&input, settings)
    case 1: RoundTripCheck.run(&input, settings)
    default: FrameStreamCheck.run(&input, settings)
    }
    return 0
}

@main
struct FuzzMain {
    static func main() { runFuzzer(fuzz) }
}
