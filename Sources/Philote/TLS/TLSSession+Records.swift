import CSystem

/// The alerts the server sends or tells apart (RFC 8446 section 6, RFC 5246 section 7.2).
enum TLSAlert: UInt8 {
    case closeNotify = 0
    case unexpectedMessage = 10
    case badRecordMAC = 20
    case recordOverflow = 22
    case illegalParameter = 47
    case decodeError = 50
    case protocolVersion = 70
    case internalError = 80
    case userCanceled = 90
    case noRenegotiation = 100
}

/// Records after the handshake: what a client may send then is application data, alerts, and in TLS 1.3
/// KeyUpdate (in TLS 1.2 a ClientHello asking to renegotiate, which is refused). Pure code over bytes: the caller
/// reads and writes the socket.
extension TLSSession {
    enum Inbound: Equatable {
        /// Application data at these bytes of the buffer (possibly none).
        case data(Range<Int>)
        /// The bytes from the offset on, if any, are the start of a record: keep them for the next read.
        case needMore
        /// A KeyUpdate or a warning, handled here; an answer it calls for is sealed into `unsent`.
        case control
        /// The peer's close_notify.
        case closeNotify
        /// A fatal error (its alert is sealed into `unsent`) or a fatal alert from the peer: close.
        case failure
    }

    static let maxPlaintext = 16384
    static let headerLength = 5

    private enum ContentType: UInt8 {
        case alert = 21
        case handshake = 22
        case applicationData = 23
    }

    private var isTLS13: Bool { traffic.map { CSystem_tls_traffic_version($0) == 0x0304 } ?? false }

    /// Opens the record at `offset` in `buffer[..<end]` in place and moves `offset` past it.
    func nextRecord(
        _ buffer: UnsafeMutableRawBufferPointer, end: Int, offset: inout Int, ciphers: TLSCiphers
    ) -> Inbound {
        guard let traffic, end - offset >= Self.headerLength else { return .needMore }
        let record = buffer.baseAddress! + offset
        let length = Int(CSystem_tls_record_length(traffic, record))
        guard length >= 0 else { return fail(TLSAlert(rawValue: UInt8(-length)) ?? .decodeError, ciphers) }
        guard end - offset >= Self.headerLength + length else { return .needMore }
        var type: UInt8 = 0
        var start = 0
        let opened = Int(CSystem_tls_open(traffic, ciphers.pointer, record, Self.headerLength + length, &type, &start))
        guard opened >= 0 else { return fail(TLSAlert(rawValue: UInt8(-opened)) ?? .decodeError, ciphers) }
        let plaintext = offset + start..<offset + start + opened
        offset += Self.headerLength + length
        switch ContentType(rawValue: type) {
        case .applicationData: return .data(plaintext)
        case .alert: return alert(UnsafeRawBufferPointer(rebasing: buffer[plaintext]), ciphers)
        case .handshake: return handshakeMessages(UnsafeRawBufferPointer(rebasing: buffer[plaintext]), ciphers)
        case nil: return fail(.unexpectedMessage, ciphers)
        }
    }

    private func alert(_ body: UnsafeRawBufferPointer, _ ciphers: TLSCiphers) -> Inbound {
        guard body.count == 2 else { return fail(.decodeError, ciphers) }
        switch TLSAlert(rawValue: body[1]) {
        case .closeNotify:
            return .closeNotify
        case .userCanceled:
            return .control  // a close_notify follows it
        default:
            // TLS 1.2 warnings (level 1) leave the connection up; every other alert is fatal.
            if !isTLS13 && body[0] == 1 { return .control }
            failed = true
            return .failure
        }
    }

    private func handshakeMessages(_ body: UnsafeRawBufferPointer, _ ciphers: TLSCiphers) -> Inbound {
        guard let traffic, !body.isEmpty else { return fail(.unexpectedMessage, ciphers) }
        if !isTLS13 {
            // A ClientHello asks to renegotiate: refused with a warning, and the connection goes on as it was.
            guard body[0] == 1 else { return fail(.unexpectedMessage, ciphers) }
            sealControl(.alert, [1, TLSAlert.noRenegotiation.rawValue], ciphers)
            return .control
        }
        // KeyUpdate (RFC 8446 section 4.6.3), the only message a client may send after the handshake. It changes
        // the keys, so it ends its record.
        guard body.count == 5, body[0] == 24, body[1] == 0, body[2] == 0, body[3] == 1 else {
            return fail(body[0] == 24 ? .decodeError : .unexpectedMessage, ciphers)
        }
        guard body[4] <= 1 else { return fail(.illegalParameter, ciphers) }
        guard CSystem_tls_update_traffic_keys(traffic, 0) == 1 else { return fail(.internalError, ciphers) }
        if body[4] == 1 && !outputClosed {
            // update_requested: our own KeyUpdate, sealed with the old keys, then the new keys for what follows.
            sealControl(.handshake, [24, 0, 0, 1, 0], ciphers)
            guard CSystem_tls_update_traffic_keys(traffic, 1) == 1 else { return fail(.internalError, ciphers) }
        }
        return .control
    }

    /// Seals an alert or handshake message into `unsent`, behind what is already there.
    private func sealControl(_ type: ContentType, _ message: [UInt8], _ ciphers: TLSCiphers) {
        guard let traffic, !outputClosed else { return }
        let start = unsent.count
        unsent.append(contentsOf: repeatElement(0, count: message.count + CSystem_tls_record_overhead(traffic)))
        let sealed = message.withUnsafeBytes { input in
            unsent.withUnsafeMutableBytes { output in
                CSystem_tls_seal(
                    traffic, ciphers.pointer, type.rawValue, input.baseAddress, input.count, output.baseAddress! + start
                )
            }
        }
        unsent.removeSubrange((start + max(Int(sealed), 0))...)
        if type == .alert && (message[1] == TLSAlert.closeNotify.rawValue || message[0] == 2) {
            outputClosed = true
        }
    }

    /// Seals close_notify (once) into `unsent`.
    func sealCloseNotify(ciphers: TLSCiphers) {
        sealControl(.alert, [1, TLSAlert.closeNotify.rawValue], ciphers)
    }

    private func fail(_ alert: TLSAlert, _ ciphers: TLSCiphers) -> Inbound {
        failed = true
        sealControl(.alert, [2, alert.rawValue], ciphers)
        return .failure
    }

    /// Seals `plaintext` as application data into `out`, in records of at most 16 KiB, as much as fits. Returns
    /// the plaintext bytes taken and the record bytes written, or nil if sealing failed.
    func seal(
        _ plaintext: UnsafeRawBufferPointer, into out: UnsafeMutableRawBufferPointer, ciphers: TLSCiphers
    ) -> (consumed: Int, sealed: Int)? {
        guard let traffic, !outputClosed else { return nil }
        let overhead = CSystem_tls_record_overhead(traffic)
        var consumed = 0
        var sealed = 0
        while consumed < plaintext.count {
            let chunk = min(plaintext.count - consumed, Self.maxPlaintext, out.count - sealed - overhead)
            guard chunk > 0 else { break }
            let result = CSystem_tls_seal(
                traffic, ciphers.pointer, ContentType.applicationData.rawValue, plaintext.baseAddress! + consumed,
                chunk, out.baseAddress! + sealed)
            guard result > 0 else { return nil }
            consumed += chunk
            sealed += Int(result)
        }
        return (consumed, sealed)
    }
}
