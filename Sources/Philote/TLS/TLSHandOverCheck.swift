import CSystem

#if canImport(Glibc)
    import Glibc
#endif

/// The built-in record layer relies on what OpenSSL's keylog and message callbacks report during a handshake;
/// another OpenSSL build could report it differently. So before serving, one loopback handshake per TLS version
/// goes through the real path (TLSStream, the hand-over, TLSRecordLayer) against an OpenSSL client on a socket
/// pair, and a record goes each way. If the keys do not work, the server lets OpenSSL keep its connections
/// (TLS_RECORD_LAYER=openssl) instead of failing its clients.
public enum TLSHandOverCheck {
    /// nil when the hand-over works with this OpenSSL for TLS 1.3 and 1.2, else what failed.
    public static func run(_ context: TLSContext) -> String? {
        for version in [TLS1_3_VERSION, TLS1_2_VERSION] {
            if let failure = exchange(context, version: Int(version)) {
                return "\(version == TLS1_3_VERSION ? "TLS 1.3" : "TLS 1.2"): \(failure)"
            }
        }
        return nil
    }

    private static let ping = Array("philote hand-over check: client to server".utf8)
    private static let pong = Array("philote hand-over check: server to client".utf8)

    private static func exchange(_ context: TLSContext, version: Int) -> String? {
        var fds: [Int32] = [-1, -1]
        guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &fds) == 0 else { return "no socket pair" }
        defer { for fd in fds { Glibc.close(fd) } }
        for fd in fds { _ = fcntl(fd, F_SETFL, O_NONBLOCK) }
        guard let clientContext = SSL_CTX_new(TLS_client_method()) else { return "no client context" }
        defer { SSL_CTX_free(clientContext) }
        SSL_CTX_ctrl(clientContext, SSL_CTRL_SET_MIN_PROTO_VERSION, version, nil)
        SSL_CTX_ctrl(clientContext, SSL_CTRL_SET_MAX_PROTO_VERSION, version, nil)
        guard let client = SSL_new(clientContext) else { return "no client" }
        defer { SSL_free(client) }
        SSL_set_fd(client, fds[0])
        SSL_set_connect_state(client)
        guard let server = TLSStream(context: context, fd: fds[1]) else { return "no server session" }

        var clientDone = false
        var serverDone = false
        for _ in 0..<64 where !(clientDone && serverDone) {
            if !clientDone { clientDone = SSL_do_handshake(client) == 1 }
            if !serverDone {
                switch server.handshake() {
                case .done: serverDone = true
                case .failed: return "the handshake or the hand-over failed"
                case .wantRead, .wantWrite: break
                }
            }
        }
        guard clientDone && serverDone else { return "the handshake did not finish" }

        // Client to server: the server's read keys and sequence number.
        guard SSL_write(client, ping, Int32(ping.count)) == ping.count else { return "the client could not write" }
        let ciphers = TLSCiphers(plaintextCapacity: 4096)
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 16, alignment: 16)
        defer { buffer.deallocate() }
        let count = read(fds[1], buffer.baseAddress, buffer.count)
        guard count > 0 else { return "nothing reached the server" }
        var received: [UInt8] = []
        let end = server.openRecords(buffer, end: count, ciphers: ciphers) { plaintext in
            received += plaintext
            return true
        }
        guard end == .wouldBlock, received == ping else { return "the server could not open the client's record" }

        // Server to client: the write keys and sequence number (after the tickets a TLS 1.3 server sent).
        let sent = pong.withUnsafeBytes { bytes in
            try? server.send(bytes, fd: fds[1], ciphers: ciphers, now: 1, sealing: nil)
        }
        guard let sent, sent.consumed == pong.count, server.unsentCount == 0 else { return "the server could not seal" }
        var answer = [UInt8](repeating: 0, count: 256)
        var read = 0
        for _ in 0..<8 where read == 0 {
            read = Int(SSL_read(client, &answer, Int32(answer.count)))  // tickets first, then the data
        }
        guard read == pong.count, Array(answer[..<read]) == pong else { return "the client could not open the server's record" }
        return nil
    }
}
