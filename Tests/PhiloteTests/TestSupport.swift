@testable import Philote

/// A deterministic generator (SplitMix64) so randomized tests repeat exactly.
struct SeededGenerator: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

extension Array where Element == UInt8 {
    init(_ text: String) { self = Array(text.utf8) }
}

/// Builds a client frame, masked with `mask` unless it is nil (RFC 6455 section 5.2), using the minimal
/// length encoding.
func clientFrame(
    _ opcode: UInt8, _ payload: [UInt8], fin: Bool = true, rsv: UInt8 = 0,
    mask: [UInt8]? = [0x37, 0xFA, 0x21, 0x3D]
) -> [UInt8] {
    var bytes: [UInt8] = [(fin ? 0x80 : 0) | rsv | opcode]
    let maskBit: UInt8 = mask == nil ? 0 : 0x80
    if payload.count < 126 {
        bytes.append(maskBit | UInt8(payload.count))
    } else if payload.count <= 0xFFFF {
        bytes.append(maskBit | 126)
        bytes += [UInt8(payload.count >> 8), UInt8(payload.count & 0xFF)]
    } else {
        bytes.append(maskBit | 127)
        for shift in stride(from: 56, through: 0, by: -8) { bytes.append(UInt8(truncatingIfNeeded: payload.count >> shift)) }
    }
    if let mask {
        bytes += mask
        for (index, byte) in payload.enumerated() { bytes.append(byte ^ mask[index % 4]) }
    } else {
        bytes += payload
    }
    return bytes
}

/// Everything a `WebSocketReader` reported, in order.
final class RecordingSink: WebSocketEventSink {
    enum Event: Equatable {
        case message(Opcode, [UInt8])
        case ping([UInt8])
        case pong([UInt8])
        case close(UInt16?, [UInt8])
    }

    var events: [Event] = []

    func receivedMessage(_ opcode: Opcode, _ payload: UnsafeRawBufferPointer) {
        events.append(.message(opcode, Array(payload)))
    }
    func receivedPing(_ payload: UnsafeRawBufferPointer) { events.append(.ping(Array(payload))) }
    func receivedPong(_ payload: UnsafeRawBufferPointer) { events.append(.pong(Array(payload))) }
    func receivedClose(code: UInt16?, reason: UnsafeRawBufferPointer) {
        events.append(.close(code, Array(reason)))
    }
}

/// Feeds `chunks` to a reader the way a connection does: unconsumed bytes are carried into the next read.
/// Returns the events, the last outcome's stop, and the bytes left unconsumed.
func readInChunks(
    _ chunks: [[UInt8]], maxMessageSize: Int = 65536
) -> (events: [RecordingSink.Event], stop: WebSocketReader.Stop?, leftover: Int) {
    var reader = WebSocketReader(maxMessageSize: maxMessageSize)
    let sink = RecordingSink()
    var pending: [UInt8] = []
    for chunk in chunks {
        pending += chunk
        let outcome = pending.withUnsafeMutableBytes { reader.read($0, into: sink) }
        precondition(outcome.consumed <= pending.count)
        pending.removeFirst(outcome.consumed)
        if let stop = outcome.stop { return (sink.events, stop, pending.count) }
    }
    return (sink.events, nil, pending.count)
}
