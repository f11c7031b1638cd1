import Philote

/// Mode 2: compressed messages through the whole inbound path, WebSocketReader with permessage-deflate
/// enabled, where the decompressed-size limit is enforced (deliverCompressed). The script builds a
/// client's frame stream and, beside it, what the reader must report, from ReferenceInflater:
/// - a compressed message is delivered exactly when its payload and what it inflates to both fit the limit,
///   it inflates without error and, if text, is UTF-8; otherwise the reader stops with the matching error
///   (messageTooBig, invalidCompressedData, invalidUTF8) and delivers nothing of it or after it;
/// - uncompressed binary messages and pings between fragments are reported as they are;
/// - reading the stream in chunks of any size gives the same events and stop; the count of compressed
///   messages matches.
///
/// Byte 2: the chunk size the stream is read in (0: all at once). Per message: a flag byte (bit 0 the
/// payload is the piece itself rather than the piece compressed by MessageCompressor; bit 1 RSV1, without
/// it the piece goes as an uncompressed binary message; bit 2 text; bits 3-4 one to four fragments; bit 5
/// a ping after each fragment but the last; bit 6 the compressor ends the message with a final block),
/// then the piece.
enum FrameStreamCheck {
    static func run(_ input: inout FuzzInput, _ settings: InflateSettings) {
        let chunkSize = Int(input.byte())
        let compressor = MessageCompressor.fresh(
            windowBits: settings.windowBits, level: settings.level, contextTakeover: settings.contextTakeover)
        let reference = ReferenceInflater(contextTakeover: settings.contextTakeover)
        var stream: [UInt8] = []
        var expected: [RecordedEvent] = []
        var expectedStop: WebSocketReader.Stop?
        var compressedDelivered: UInt32 = 0
        var index = 0
        messages: while !input.isAtEnd {
            let flags = input.byte()
            let piece = input.piece()
            let compressed = flags & 2 != 0
            let opcode: Opcode = compressed && flags & 4 != 0 ? .text : .binary
            let payload = compressed && flags & 1 == 0 ? compressor.compress(piece, final: flags & 64 != 0) : piece
            let parts = fragments(of: payload, count: 1 + Int(flags >> 3) & 3)
            var sent = 0
            for (number, part) in parts.enumerated() {
                let last = number == parts.count - 1
                let mask = [UInt8(index & 0xFF), 0x5A, UInt8(number), 0xC3]
                stream += MaskedFrameWriter.frame(
                    number == 0 ? opcode : .continuation, fin: last, rsv1: compressed && number == 0, payload: part,
                    mask: mask)
                sent += part.count
                // The parser refuses a frame, and the assembler a message, longer than the limit.
                if sent > settings.limit {
                    expectedStop = .failure(.messageTooBig)
                    break messages
                }
                if !last && flags & 32 != 0 {
                    // The parser holds control frames to the limit too; that rule is FuzzFrames' to check.
                    let ping = Array([UInt8(index & 0xFF), UInt8(number)].prefix(settings.limit))
                    stream += MaskedFrameWriter.frame(.ping, fin: true, rsv1: false, payload: ping[...], mask: mask)
                    expected.append(.ping(ping))
                }
            }
            index += 1
            guard compressed else {
                expected.append(.message(.binary, payload))
                continue
            }
            switch reference.decompress(payload, limit: settings.limit) {
            case .failure(.tooBig):
                expectedStop = .failure(.messageTooBig)
                break messages
            case .failure(.corrupt):
                expectedStop = .failure(.invalidCompressedData)
                break messages
            case .success(let message):
                if opcode == .text && String(validating: message, as: UTF8.self) == nil {
                    expectedStop = .failure(.invalidUTF8)
                    break messages
                }
                expected.append(.message(opcode, message))
                compressedDelivered += 1
            }
        }
        var reader = WebSocketReader(maxMessageSize: settings.limit)
        reader.enableDeflate(contextTakeover: settings.contextTakeover)
        let recorder = EventRecorder(limit: settings.limit)
        let stop = read(stream, in: chunkSize, with: &reader, into: recorder)
        precondition(
            recorder.events == expected, "events differ: \(recorder.events.count) vs \(expected.count) expected")
        precondition(
            stop == expectedStop, "stop differs: \(String(describing: stop)) vs \(String(describing: expectedStop))")
        precondition(reader.compressedMessages == compressedDelivered, "compressed message count differs")
    }

    /// `count` consecutive slices covering `payload`, the remainder in the last.
    private static func fragments(of payload: [UInt8], count: Int) -> [ArraySlice<UInt8>] {
        let size = payload.count / count
        return (0..<count).map { part in
            payload[(part * size)..<(part == count - 1 ? payload.count : (part + 1) * size)]
        }
    }

    /// Offers `stream` to the reader `chunkSize` bytes at a time, carrying the unconsumed tail as Connection
    /// does, until the reader stops or the stream ends.
    private static func read(
        _ stream: [UInt8], in chunkSize: Int, with reader: inout WebSocketReader, into recorder: EventRecorder
    ) -> WebSocketReader.Stop? {
        let step = chunkSize == 0 ? max(stream.count, 1) : chunkSize
        var pending: [UInt8] = []
        var offset = 0
        while offset < stream.count {
            let end = min(offset + step, stream.count)
            pending += stream[offset..<end]
            offset = end
            let outcome = pending.withUnsafeMutableBytes { reader.read($0, into: recorder) }
            precondition(outcome.consumed >= 0 && outcome.consumed <= pending.count, "consumed out of range")
            if let stop = outcome.stop { return stop }
            pending.removeSubrange(0..<outcome.consumed)
        }
        precondition(pending.isEmpty, "\(pending.count) bytes of whole frames left unread")
        return nil
    }
}
