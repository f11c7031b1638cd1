import FuzzSupport
import Philote

#if canImport(Glibc)
    import Glibc
#endif

/// Drives the whole inbound WebSocket path (frame parser, unmasking, assembler, UTF-8, close rules) with
/// arbitrary bytes, split at a point the input chooses, as a connection would see them across reads.
///
/// Input layout: the first byte chooses the split point (modulo the input size), the rest is the stream.
/// Oracles, besides "no crash, no memory error":
/// - `consumed` never exceeds what was offered;
/// - reading the stream in one piece and in two pieces gives exactly the same events and the same stop,
///   so nothing depends on where TCP happens to cut the stream;
/// - every reported text message and close reason is valid UTF-8, every control payload is at most
///   125 bytes, and no message is larger than the limit.
final class RecordingSink: WebSocketEventSink {
    enum Event: Equatable {
        case message(Opcode, [UInt8])
        case ping([UInt8])
        case pong([UInt8])
        case close(UInt16?, [UInt8])
    }

    var events: [Event] = []

    func receivedMessage(_ opcode: Opcode, _ payload: UnsafeRawBufferPointer) {
        precondition(payload.count <= maxMessageSize, "message over the limit")
        if opcode == .text {
            var validator = UTF8Validator()
            precondition(validator.validate(payload) && validator.isComplete, "invalid UTF-8 text delivered")
        }
        precondition(opcode == .text || opcode == .binary, "message with a non-data opcode")
        events.append(.message(opcode, Array(payload)))
    }

    func receivedPing(_ payload: UnsafeRawBufferPointer) {
        precondition(payload.count <= 125, "ping over 125 bytes")
        events.append(.ping(Array(payload)))
    }

    func receivedPong(_ payload: UnsafeRawBufferPointer) {
        precondition(payload.count <= 125, "pong over 125 bytes")
        events.append(.pong(Array(payload)))
    }

    func receivedClose(code: UInt16?, reason: UnsafeRawBufferPointer) {
        precondition(reason.count <= 123, "close reason over 123 bytes")
        if let code { precondition(CloseCode.isValidOnWire(code), "invalid close code delivered") }
        var validator = UTF8Validator()
        precondition(validator.validate(reason) && validator.isComplete, "invalid UTF-8 close reason delivered")
        events.append(.close(code, Array(reason)))
    }
}

let maxMessageSize = 4096

/// Reads `chunks` in order, carrying the unconsumed tail like Connection does.
func run(_ chunks: [ArraySlice<UInt8>]) -> ([RecordingSink.Event], WebSocketReader.Stop?) {
    var reader = WebSocketReader(maxMessageSize: maxMessageSize)
    let sink = RecordingSink()
    var pending: [UInt8] = []
    for chunk in chunks {
        pending.append(contentsOf: chunk)
        let outcome = pending.withUnsafeMutableBytes { reader.read($0, into: sink) }
        precondition(outcome.consumed >= 0 && outcome.consumed <= pending.count, "consumed out of range")
        if let pendingLength = outcome.pendingFrameLength {
            precondition(
                outcome.stop == nil && pendingLength > pending.count - outcome.consumed, "bad pendingFrameLength")
        }
        if let stop = outcome.stop { return (sink.events, stop) }
        pending.removeSubrange(0..<outcome.consumed)
    }
    return (sink.events, nil)
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard size > 0 else { return 0 }
    let split = Int(data[0]) % size
    let bytes = Array(UnsafeBufferPointer(start: data + 1, count: size - 1))
    let cut = min(split, bytes.count)
    let whole = run([bytes[...]])
    let pieces = run([bytes[..<cut], bytes[cut...]])
    precondition(whole.0 == pieces.0, "events differ between one read and two reads split at \(cut)")
    precondition(whole.1 == pieces.1, "stop differs between one read and two reads split at \(cut)")
    return 0
}

@main
struct FuzzMain {
    static func main() { runFuzzer(fuzz) }
}
