import Philote

/// What a WebSocketReader reported, in order, as FrameStreamCheck expects and records it.
enum RecordedEvent: Equatable {
    case message(Opcode, [UInt8])
    case ping([UInt8])
}
