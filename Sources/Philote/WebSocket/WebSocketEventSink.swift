/// What a `WebSocketReader` reports while it decodes. Implemented by the connection; tests implement it to
/// record events. Payload pointers are valid only during the call.
public protocol WebSocketEventSink: AnyObject {
    func receivedMessage(_ opcode: Opcode, _ payload: UnsafeRawBufferPointer)
    func receivedPing(_ payload: UnsafeRawBufferPointer)
    func receivedPong(_ payload: UnsafeRawBufferPointer)
    /// A valid close frame: `code` is nil for an empty payload. Nothing after it is read.
    func receivedClose(code: UInt16?, reason: UnsafeRawBufferPointer)
}
