import Philote

/// Mode 1: messages compressed as a peer would (MessageCompressor, with or without context takeover, some
/// ending in a final block; without takeover also the server's own Deflater), then inflated by Inflater:
/// each must come back exactly when it fits the limit, and be refused as too big exactly when it does not.
///
/// Per message: a flag byte (bit 0 end in a final block, bit 1 use the server's Deflater where the context
/// is not kept), then the plain text as a length-prefixed piece.
enum RoundTripCheck {
    nonisolated(unsafe) private static var deflaters: [Int: Deflater] = [:]

    static func run(_ input: inout FuzzInput, _ settings: InflateSettings) {
        let compressor = MessageCompressor.fresh(
            windowBits: settings.windowBits, level: settings.level, contextTakeover: settings.contextTakeover)
        let inflater = Inflater(contextTakeover: settings.contextTakeover)
        while !input.isAtEnd {
            let flags = input.byte()
            let message = input.piece()
            let payload: [UInt8]
            if flags & 2 != 0 && !settings.contextTakeover {
                let deflater = deflaters[settings.windowBits] ?? Deflater(windowBits: settings.windowBits)
                deflaters[settings.windowBits] = deflater
                payload = message.withUnsafeBytes { deflater.compress($0) }
            } else {
                payload = compressor.compress(message, final: flags & 1 != 0)
            }
            let got = payload.withUnsafeBytes { inflater.decompress($0, limit: settings.limit) }
            if message.count > settings.limit {
                precondition(
                    got == .failure(.tooBig),
                    "\(message.count) bytes over a limit of \(settings.limit): \(got.summary)")
                return
            }
            precondition(got == .success(message), "round trip of \(message.count) bytes gave \(got.summary)")
        }
    }
}
