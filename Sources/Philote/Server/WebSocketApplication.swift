/// What runs on top of the engine: echo mode, and the pub/sub server. Every call happens on the
/// connection's loop thread.
public protocol WebSocketApplication: AnyObject, Sendable {
    /// Answers a request that is not a WebSocket upgrade, or nil to let the engine refuse it as a failed
    /// upgrade. `body` holds the `Content-Length` bytes after the head (empty without one).
    func respond(to head: RequestHead, body: [UInt8], connection: Connection) -> HTTPAnswer?
    /// Whether the body a plain request announces is read before `respond(to:body:connection:)`: false answers
    /// it from its head alone, with an empty body. Until a client has shown a valid token, its body is not worth
    /// the memory.
    func readsBody(of head: RequestHead, connection: Connection) -> Bool
    /// Decides on a valid upgrade request before the 101 is sent: nil accepts, an error refuses.
    func shouldAccept(_ request: UpgradeRequest, connection: Connection) -> HandshakeError?
    func opened(_ connection: Connection)
    func received(_ connection: Connection, opcode: Opcode, payload: UnsafeRawBufferPointer)
    /// The connection is gone (only called for connections that were opened).
    func closed(_ connection: Connection)
}
