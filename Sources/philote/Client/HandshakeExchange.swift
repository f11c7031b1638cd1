import Philote

#if canImport(Glibc)
    import Glibc
#endif

/// The I/O half of the opening handshake: sends `ClientHandshake`'s request and reads the answer within a
/// deadline. A refusal's body is read too (bounded), because it holds the reason a user needs ("token
/// expired"); `ClientHandshake` turns status and body into the failure line.
enum HandshakeExchange {
    /// A refusal body longer than this is cut: it only feeds a one-line message.
    static let maxBodyLength = 4096

    /// Performs the handshake on the connected socket `fd`; returns the bytes that followed the 101 head
    /// (the server may already have sent its first frames) and, when permessage-deflate was agreed,
    /// whether the server keeps its compression context.
    static func perform(socket: ClientSocket, url: WebSocketURL, token: String?, deadline: Deadline)
        throws(ClientFailure)
        -> (received: [UInt8], deflateContextTakeover: Bool?)
    {
        let handshake = ClientHandshake()
        try send(handshake.request(for: url, token: token), to: socket, deadline: deadline)
        var buffer: [UInt8] = []
        while true {
            switch HTTPResponseHead.parse(buffer) {
            case .invalid(let why):
                throw ClientFailure("handshake failed: \(why)")
            case .incomplete:
                guard try receive(into: &buffer, from: socket, deadline: deadline) else {
                    throw ClientFailure("handshake failed: the server closed the connection without answering")
                }
            case .head(let head, let length):
                var rest = Array(buffer[length...])
                if head.status != 101 {
                    // The body ends at Content-Length, or at end of file (the server closes after a refusal).
                    let wanted = min(head.contentLength ?? maxBodyLength, maxBodyLength)
                    while rest.count < wanted, !deadline.hasPassed,
                        (try? receive(into: &rest, from: socket, deadline: deadline)) == true
                    {}
                    rest = Array(rest.prefix(wanted))
                }
                if let failure = handshake.check(head, body: rest) {
                    throw ClientFailure(failure.message)
                }
                return (rest, ClientHandshake.negotiatedDeflate(head))
            }
        }
    }

    private static func send(_ bytes: [UInt8], to socket: ClientSocket, deadline: Deadline) throws(ClientFailure) {
        var offset = 0
        while offset < bytes.count {
            let status = bytes.withUnsafeBytes { socket.write(UnsafeRawBufferPointer(rebasing: $0[offset...])) }
            switch status {
            case .transferred(let count): offset += count
            case .wouldBlock:
                if POSIXIO.wait(socket.fd, for: Int16(POLLOUT), milliseconds: deadline.remainingMilliseconds) == 0 {
                    throw ClientFailure("handshake failed: timed out sending the request")
                }
            case .endOfFile: throw ClientFailure("handshake failed: the connection closed")
            case .failed(let code): throw ClientFailure("handshake failed: \(POSIXIO.describe(code))")
            }
        }
    }

    /// Appends what arrives before the deadline; false at end of file.
    private static func receive(into buffer: inout [UInt8], from socket: ClientSocket, deadline: Deadline)
        throws(ClientFailure)
        -> Bool
    {
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let status = chunk.withUnsafeMutableBytes { socket.read(into: $0) }
            switch status {
            case .transferred(let count):
                buffer += chunk[..<count]
                return true
            case .endOfFile:
                return false
            case .wouldBlock:
                if POSIXIO.wait(socket.fd, for: Int16(POLLIN), milliseconds: deadline.remainingMilliseconds) == 0 {
                    throw ClientFailure("handshake failed: no answer from the server within the time limit")
                }
            case .failed(let code):
                throw ClientFailure("handshake failed: \(POSIXIO.describe(code))")
            }
        }
    }
}
