import Philote

#if canImport(Glibc)
    import Glibc
#endif

/// One blocking connection and handshake before the run, with the client's code: the server's absence or
/// a refused token, or (wss://) a certificate that does not verify, ends the run at once with the client's
/// one-line reason.
enum BenchProbe {
    static let timeout: Duration = .seconds(5)

    static func check(_ url: WebSocketURL, token: String?, caFile: String?, insecure: Bool) throws(BenchFailure) {
        do throws(ClientFailure) {
            let deadline = Deadline(after: timeout)
            let fd = try TCPConnector.connect(to: url, deadline: deadline)
            let socket =
                url.secure
                ? try ClientSocket(tlsOver: fd, host: url.host, caFile: caFile, insecure: insecure, deadline: deadline)
                : ClientSocket(plain: fd)
            defer { socket.close() }
            _ = try HandshakeExchange.perform(socket: socket, url: url, token: token, deadline: deadline)
        } catch {
            throw BenchFailure(error.message, status: 1)
        }
    }
}
