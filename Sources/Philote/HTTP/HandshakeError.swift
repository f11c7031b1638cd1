/// Why an upgrade request was refused: the HTTP status it is answered with and a one-line reason.
public struct HandshakeError: Error, Equatable, Sendable {
    public var status: HTTPStatus
    public var reason: String
    /// Extra response header lines (e.g. `Sec-WebSocket-Version: 13` with 426).
    public var headers: [(String, String)]

    public init(_ status: HTTPStatus, _ reason: String, headers: [(String, String)] = []) {
        self.status = status
        self.reason = reason
        self.headers = headers
    }

    public static func == (lhs: HandshakeError, rhs: HandshakeError) -> Bool {
        lhs.status == rhs.status && lhs.reason == rhs.reason
            && lhs.headers.elementsEqual(rhs.headers, by: { $0 == $1 })
    }
}
