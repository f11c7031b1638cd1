/// Small complete HTTP/1.1 responses, built once per handshake (never on the message path).
public enum HTTPResponse {
    /// A response with a plain-text body; the connection is closed after it.
    public static func text(_ status: HTTPStatus, _ body: String, headers: [(String, String)] = []) -> [UInt8] {
        complete(status, contentType: "text/plain; charset=utf-8", body: body + "\n", headers: headers)
    }

    /// A JSON response (the API's answers and errors); the connection is closed after it.
    public static func json(_ status: HTTPStatus, _ body: String, headers: [(String, String)] = []) -> [UInt8] {
        complete(status, contentType: "application/json", body: body + "\n", headers: headers)
    }

    /// A response whose body is sent exactly as given (e.g. the Prometheus text format).
    public static func raw(
        _ status: HTTPStatus, contentType: String, body: String, headers: [(String, String)] = []
    ) -> [UInt8] {
        complete(status, contentType: contentType, body: body, headers: headers)
    }

    private static func complete(
        _ status: HTTPStatus, contentType: String, body: String, headers: [(String, String)]
    ) -> [UInt8] {
        var head = "HTTP/1.1 \(status.rawValue) \(status.phrase)\r\n"
        head += "Content-Type: \(contentType)\r\n"
        head += "Content-Length: \(body.utf8.count)\r\n"
        head += "Connection: close\r\n"
        for (name, value) in headers { head += "\(name): \(value)\r\n" }
        head += "\r\n"
        return Array((head + body).utf8)
    }

    /// 304: the client's copy is current (no body, no Content-Length, RFC 9110 section 15.4.5).
    public static func notModified(headers: [(String, String)]) -> [UInt8] {
        var head = "HTTP/1.1 304 Not Modified\r\nConnection: close\r\n"
        for (name, value) in headers { head += "\(name): \(value)\r\n" }
        head += "\r\n"
        return Array(head.utf8)
    }

    /// The head of `response` only (its Content-Length still tells what a GET would carry).
    public static func withoutBody(_ response: [UInt8]) -> [UInt8] {
        var index = 0
        while index + 4 <= response.count {
            if response[index] == 0x0D && response[index + 1] == 0x0A && response[index + 2] == 0x0D
                && response[index + 3] == 0x0A
            {
                return Array(response[..<(index + 4)])
            }
            index += 1
        }
        return response
    }

    public static func error(_ error: HandshakeError) -> [UInt8] {
        text(error.status, error.reason, headers: error.headers)
    }

    /// The 101 answer that completes an upgrade (RFC 6455 section 4.2.2).
    public static func switchingProtocols(accept: String, extraHeaders: [(String, String)] = []) -> [UInt8] {
        var head = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        head += "Sec-WebSocket-Accept: \(accept)\r\n"
        for (name, value) in extraHeaders { head += "\(name): \(value)\r\n" }
        head += "\r\n"
        return Array(head.utf8)
    }
}
