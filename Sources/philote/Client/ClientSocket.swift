import CSystem
import Philote

#if canImport(Glibc)
    import Glibc
#endif

/// The client's connection, plain or TLS, behind one read/write interface with POSIXIO's results, so the
/// handshake and the session do not care which. The descriptor stays non-blocking; TLS's "wants to read /
/// write" is reported as `.wouldBlock`, and `hasBufferedInput` says when OpenSSL holds decrypted bytes
/// that poll(2) would not signal.
final class ClientSocket {
    let fd: Int32
    private let tls: OpaquePointer?
    private let context: OpaquePointer?

    init(plain fd: Int32) {
        self.fd = fd
        tls = nil
        context = nil
    }

    /// Runs the TLS handshake on connected `fd` within `deadline`: the certificate is checked against
    /// `caFile` (or the system's authorities) and `host`, unless `insecure`.
    init(tlsOver fd: Int32, host: String, caFile: String?, insecure: Bool, deadline: Deadline) throws(ClientFailure) {
        self.fd = fd
        var message = [CChar](repeating: 0, count: 512)
        guard let context = CSystem_tls_client_context(caFile, insecure ? 1 : 0, &message, message.count) else {
            throw ClientFailure("TLS: \(message.withUnsafeBufferPointer { String(cString: $0.baseAddress!) })")
        }
        guard let tls = CSystem_tls_client_new(context, fd, host) else {
            CSystem_tls_context_free(context)
            throw ClientFailure("TLS: cannot start a session")
        }
        self.context = context
        self.tls = tls
        while true {
            let result = CSystem_tls_handshake(tls)
            if result == 1 { break }
            let events: Int16
            switch result {
            case Int32(CSystem_TLS_WANT_READ): events = Int16(POLLIN)
            case Int32(CSystem_TLS_WANT_WRITE): events = Int16(POLLOUT)
            default:
                let verify = String(cString: CSystem_tls_verify_error(tls))
                let why = verify.isEmpty ? "the server refused it or is not speaking TLS" : "certificate: \(verify)"
                throw ClientFailure("TLS handshake with \(host) failed: \(why)")
            }
            if POSIXIO.wait(fd, for: events, milliseconds: deadline.remainingMilliseconds) == 0 {
                throw ClientFailure("TLS handshake with \(host) timed out")
            }
        }
    }

    deinit {
        if let tls { CSystem_tls_free(tls) }
        if let context { CSystem_tls_context_free(context) }
    }

    var hasBufferedInput: Bool { tls.map { CSystem_tls_pending($0) > 0 } ?? false }

    func read(into buffer: UnsafeMutableRawBufferPointer) -> POSIXIO.Status {
        guard let tls else { return POSIXIO.read(fd, into: buffer) }
        return status(CSystem_tls_read(tls, buffer.baseAddress, Int32(clamping: buffer.count)))
    }

    func write(_ bytes: UnsafeRawBufferPointer) -> POSIXIO.Status {
        guard let tls else { return POSIXIO.write(fd, bytes) }
        return status(CSystem_tls_write(tls, bytes.baseAddress, Int32(clamping: bytes.count)))
    }

    /// close_notify (TLS), then the descriptor.
    func close() {
        if let tls { CSystem_tls_close_notify(tls) }
        _ = Glibc.close(fd)
    }

    private func status(_ result: Int32) -> POSIXIO.Status {
        switch result {
        case Int32(CSystem_TLS_WANT_READ), Int32(CSystem_TLS_WANT_WRITE): .wouldBlock
        case Int32(CSystem_TLS_CLOSED): .endOfFile
        case Int32(CSystem_TLS_FAILED): .failed(EPROTO)
        default: .transferred(Int(result))
        }
    }
}
