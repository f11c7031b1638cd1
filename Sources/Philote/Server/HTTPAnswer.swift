/// How an application answers a plain (non-upgrade) HTTP request.
public enum HTTPAnswer: Sendable {
    /// A complete response, sent at once; the connection closes after it.
    case response([UInt8])
    /// The answer needs other event loops first (e.g. how many readers a publish reached on each): the
    /// application calls `Connection.sendHTTPResponse` on the connection's loop once it has it.
    case later
}
