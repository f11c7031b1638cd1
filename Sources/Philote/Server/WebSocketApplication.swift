/// What runs on top of the engine: echo mode, and the pub/sub server. Every call happens on the
/// connection's loop thread.
public protocol WebSocketApplication: AnyObject, Sendable {
    /// Answers a request that is not a WebSocket upgrade, or nil to let the engine refuse it as a failed
    /// upgrade. `body` holds the `Content-Length` bytes after the head (empty without one).
    func respond(to head: RequestHead, body: [UInt8], connection: Connection) -> HTTPAnswer?
    /// Decides on a valid upgrade request before the 101 is sent: nil accepts, an error refuses.
    func shouldAccept(_ request: UpgradeRequest, connection: Connection) -> HandshakeError?
    func opened(_ connection: Connection)
    func received(_ connection: Connection, opcode: Opcode, payload: UnsafeRawBufferPointer)
    /// The connection is gone (only called for connections that were opened).
    func closed(_ connection: Connection)
}
