import CSystem

/// One connection's TLS state, driven by the reactor: every call is non-blocking and reports what it
/// waits for (WANT_READ / WANT_WRITE), which the connection turns into epoll interest.
final class TLSSession {
    enum Status: Equatable {
        case done(Int)
        case wantRead
        case wantWrite
        case closed
        case failed
    }

    private let pointer: OpaquePointer
    private(set) var handshakeComplete = false
    /// The last operation could not proceed until the socket is writable (also for a read, e.g. during
    /// a handshake or a key update).
    var wantsWrite = false

    init?(context: TLSContext, fd: Int32) {
        guard let tls = CSystem_tls_new(context.pointer, fd) else { return nil }
        pointer = tls
    }

    deinit { CSystem_tls_free(pointer) }

    private func status(_ result: Int32) -> Status {
        wantsWrite = result == Int32(CSystem_TLS_WANT_WRITE)
        switch result {
        case Int32(CSystem_TLS_WANT_READ): return .wantRead
        case Int32(CSystem_TLS_WANT_WRITE): return .wantWrite
        case Int32(CSystem_TLS_CLOSED): return .closed
        case Int32(CSystem_TLS_FAILED): return .failed
        default: return .done(Int(result))
        }
    }

    func handshake() -> Status {
        let result = CSystem_tls_handshake(pointer)
        if result == 1 {
            handshakeComplete = true
            wantsWrite = false
            return .done(0)
        }
        return status(result)
    }

    func read(into buffer: UnsafeMutableRawBufferPointer) -> Status {
        status(CSystem_tls_read(pointer, buffer.baseAddress, Int32(clamping: buffer.count)))
    }

    func write(_ bytes: UnsafeRawBufferPointer) -> Status {
        status(CSystem_tls_write(pointer, bytes.baseAddress, Int32(clamping: bytes.count)))
    }

    func closeNotify() { CSystem_tls_close_notify(pointer) }
}
