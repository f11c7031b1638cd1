import CSystem

/// The client TLS context of a wss:// run, shared by every connection of every loop (an SSL_CTX may be shared
/// across threads once configured): the peer checked against `--ca` (or the system store) for the URL's host,
/// name or IP address, unless `--insecure`.
final class BenchTLSContext: @unchecked Sendable {
    /// One step of a connection's handshake.
    enum Step {
        case done
        case wantsRead
        case wantsWrite
        case failed(String)
    }

    let context: OpaquePointer
    /// The name sent as SNI and checked in the certificate.
    let host: String

    init(caFile: String?, insecure: Bool, host: String) throws(BenchFailure) {
        var message = [CChar](repeating: 0, count: 512)
        guard let context = CSystem_tls_client_context(caFile, insecure ? 1 : 0, &message, message.count) else {
            throw BenchFailure("TLS: \(message.withUnsafeBufferPointer { String(cString: $0.baseAddress!) })", status: 1)
        }
        // As the harness (wsload) sets it: read-ahead, so that one recv brings a batch of records rather than two
        // per record (header, then body); no session cache, so that every connection does a full handshake.
        SSL_CTX_ctrl(context, SSL_CTRL_SET_READ_AHEAD, 1, nil)
        SSL_CTX_ctrl(context, SSL_CTRL_SET_SESS_CACHE_MODE, Int(SSL_SESS_CACHE_OFF), nil)
        self.context = context
        self.host = host
    }

    deinit { CSystem_tls_context_free(context) }

    /// Advances `session`'s handshake. A failure's reason is the certificate check's verdict when that failed.
    static func handshake(_ session: OpaquePointer) -> Step {
        switch CSystem_tls_handshake(session) {
        case 1:
            return .done
        case Int32(CSystem_TLS_WANT_READ):
            return .wantsRead
        case Int32(CSystem_TLS_WANT_WRITE):
            return .wantsWrite
        default:
            let verdict = String(cString: CSystem_tls_verify_error(session))
            return .failed(verdict.isEmpty ? "the server refused it or is not speaking TLS" : "certificate: \(verdict)")
        }
    }

    /// Whether OpenSSL holds input that epoll will not report again: decrypted bytes or, with read-ahead,
    /// records read from the socket and not yet opened (SSL_has_pending, unlike SSL_pending).
    static func hasPending(_ session: OpaquePointer) -> Bool { SSL_has_pending(session) != 0 }
}
