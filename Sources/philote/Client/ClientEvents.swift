import Philote

/// Receives what `WebSocketReader` decodes from the server. The reader hands over pointers that are valid
/// only during the call, so messages are copied at once into the bytes due on standard output, and pings
/// into a list; the session acts on both after each read, where it may write.
final class ClientEvents: WebSocketEventSink {
    /// Pending standard output: every message exactly as received, minus the one `\n` the server ends it
    /// with, plus a `\n`: one message per line whatever the server sends.
    var output: [UInt8] = []
    /// Payloads of pings not answered yet, in arrival order (a pong echoes its ping's payload).
    var pings: [[UInt8]] = []
    /// The server's close frame once it has arrived: its code (nil for an empty payload) and reason.
    var close: (code: UInt16?, reason: String)?

    func receivedMessage(_ opcode: Opcode, _ payload: UnsafeRawBufferPointer) {
        let end = payload.last == 0x0A ? payload.count - 1 : payload.count
        output.append(contentsOf: UnsafeRawBufferPointer(rebasing: payload[..<end]))
        output.append(0x0A)
    }

    func receivedPing(_ payload: UnsafeRawBufferPointer) {
        pings.append(Array(payload))
    }

    func receivedPong(_ payload: UnsafeRawBufferPointer) {}

    func receivedClose(code: UInt16?, reason: UnsafeRawBufferPointer) {
        close = (code, String(decoding: reason, as: UTF8.self))
    }
}
