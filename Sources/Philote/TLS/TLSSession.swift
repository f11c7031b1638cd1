import CSystem

/// One connection's TLS. OpenSSL runs the handshake, driven by the reactor (every call is non-blocking and
/// reports what it waits for, which the connection turns into epoll interest); then it hands over the traffic
/// keys and its SSL object is freed, and records are sealed and opened here (TLSSession+Records.swift). An idle
/// connection so keeps about 300 bytes of TLS state instead of OpenSSL's 14 KB (CSystemTLSTraffic.c, BENCHMARKS.md).
final class TLSSession {
    enum Status: Equatable {
        case done
        case wantRead
        case wantWrite
        case failed
    }

    /// OpenSSL's connection, until the handshake is over.
    private var handshaking: OpaquePointer?
    /// The traffic keys and sequence numbers, from the end of the handshake on.
    private(set) var traffic: OpaquePointer?
    /// The last handshake step could not proceed until the socket is writable.
    private(set) var wantsWrite = false
    /// The start of a record the socket has delivered only part of; empty (no storage) otherwise.
    var partialRecord: [UInt8] = []
    /// Sealed records the socket has not taken yet; empty (no storage) otherwise.
    var unsent: [UInt8] = []
    /// close_notify or a fatal alert is sealed (in `unsent` or already sent): nothing may follow it.
    var outputClosed = false
    /// A fatal alert was sent or received: a TLS 1.2 session leaves the server's cache (RFC 5246 section 7.2.2).
    var failed = false

    init?(context: TLSContext, fd: Int32) {
        guard let tls = CSystem_tls_new(context.pointer, fd) else { return nil }
        handshaking = tls
    }

    deinit {
        if let handshaking { CSystem_tls_free(handshaking) }
        if let traffic { CSystem_tls_traffic_free(traffic, failed ? 1 : 0) }
    }

    var handshakeComplete: Bool { traffic != nil }

    /// Advances the handshake; `.done` once it is over and the traffic keys are taken (OpenSSL is gone then).
    func handshake() -> Status {
        guard let tls = handshaking else { return traffic == nil ? .failed : .done }
        let result = CSystem_tls_handshake(tls)
        wantsWrite = result == Int32(CSystem_TLS_WANT_WRITE)
        switch result {
        case 1:
            handshaking = nil
            traffic = CSystem_tls_detach(tls)
            return traffic == nil ? .failed : .done
        case Int32(CSystem_TLS_WANT_READ): return .wantRead
        case Int32(CSystem_TLS_WANT_WRITE): return .wantWrite
        default: return .failed
        }
    }
}
