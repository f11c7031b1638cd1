/// `philote echo`: every message goes back to its sender with its own opcode. Conformance suites drive
/// a server like this, and operators use it to check a deployment's network path.
public final class EchoApplication: WebSocketApplication {
    public init() {}

    public func respond(to head: RequestHead, body: [UInt8], connection: Connection) -> HTTPAnswer? { nil }
    public func readsBody(of head: RequestHead, connection: Connection) -> Bool { false }
    public func shouldAccept(_ request: UpgradeRequest, connection: Connection) -> HandshakeError? { nil }
    public func opened(_ connection: Connection) {}

    public func received(_ connection: Connection, opcode: Opcode, payload: UnsafeRawBufferPointer) {
        connection.send(opcode, payload)
    }

    public func closed(_ connection: Connection) {}
}
