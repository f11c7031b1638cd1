import CSystem

/// One connection's TLS records after the handshake (RFC 8446 section 5, RFC 5246 section 6.2), once OpenSSL has
/// handed over the traffic keys: every decision about a record is made here, over bytes, like the WebSocket
/// parser. Opening a record returns what it means (data, nothing, the peer's close, a failure); what the peer is
/// owed in return (an alert, a KeyUpdate) is sealed into `unsent`, which the caller writes to the socket. The
/// AEAD itself and the key schedule are OpenSSL's (CSystem); the limits on what a peer may do are
/// `TLSRecordLimits`.
///
/// What a client may send after the handshake: application data, alerts, and in TLS 1.3 KeyUpdate; in TLS 1.2 a
/// ClientHello asking to renegotiate, refused with a warning. Handshake messages may span records and several may
/// share one (RFC 8446 section 5.1), except that a KeyUpdate must end its record, since the keys change after it.
final class TLSRecordLayer {
    enum Inbound: Equatable {
        /// Application data at these bytes of the buffer (never empty).
        case data(Range<Int>)
        /// The bytes from the offset on, if any, are the start of a record: keep them for the next read.
        case needMore
        /// A record that carries nothing for the application (a KeyUpdate, a warning, an empty record), handled
        /// here; an answer it calls for is in `unsent`.
        case control
        /// The input ends: the peer's close_notify, or (TLS 1.2) a key that may seal no answer, our close_notify
        /// sealed instead.
        case closeNotify
        /// A fatal error (its alert is sealed into `unsent`) or a fatal alert from the peer: the connection ends.
        case failure
    }

    static let maxPlaintext = 16384
    static let headerLength = 5
    static let tagLength = 16
    /// The largest overhead of a record: TLS 1.2 AES-GCM (header, explicit nonce, tag).
    static let maxOverhead = 29

    let isTLS13: Bool
    let aead: UInt8
    // Internal rather than private where TLSRecordLayer+Sealing.swift needs them.
    let keyLength: Int
    let secretLength: Int
    /// The plaintext a record may carry either way: 2^14, or less when the client negotiated RFC 6066
    /// max_fragment_length (embedded stacks with small buffers do).
    let maxFragment: Int
    var read: CSystem_TLSDirection
    var write: CSystem_TLSDirection
    var limits: TLSRecordLimits
    private var handshake = HandshakeAssembly()
    /// Sealed records the socket has not taken yet; empty (no storage) otherwise.
    var unsent: [UInt8] = []
    /// close_notify or a fatal alert is sealed: nothing may follow it.
    var outputClosed = false
    /// A fatal alert was sent or received: a TLS 1.2 session leaves the server's cache (RFC 5246 section 7.2.2).
    private(set) var failed = false
    /// TLS 1.2 could not seal more records with its key (`TLSRecordLimits.maxRecordsPerKey`).
    var keyExhausted = false
    /// A context keyed with the write key, held while the connection is sending often (see `keySealing`):
    /// without it each record sets up the key schedule again, which costs more than sealing a small record.
    var sealContext: UnsafeMutableRawPointer?
    private var session: UnsafeMutableRawPointer?

    init(_ handOver: CSystem_TLSHandOver) {
        isTLS13 = handOver.version == 0x0304
        aead = handOver.aead
        keyLength = Int(handOver.key_length)
        secretLength = Int(handOver.secret_length)
        maxFragment = Int(handOver.max_fragment)
        read = handOver.read
        write = handOver.write
        session = handOver.session
        limits = TLSRecordLimits(aead: handOver.aead)
    }

    deinit {
        if let sealContext { CSystem_tls_aead_free(sealContext) }
        CSystem_tls_session_release(session, failed ? 1 : 0)
        withUnsafeMutableBytes(of: &read) { CSystem_cleanse($0.baseAddress, $0.count) }
        withUnsafeMutableBytes(of: &write) { CSystem_cleanse($0.baseAddress, $0.count) }
    }

    /// Bytes a sealed record adds to its content.
    var overhead: Int { Self.headerLength + explicitNonceLength + Self.tagLength + (isTLS13 ? 1 : 0) }

    /// TLS 1.2 AES-GCM carries 8 bytes of its nonce in each record (RFC 5288).
    var explicitNonceLength: Int { !isTLS13 && aead != UInt8(CSystem_CHACHA20_POLY1305) ? 8 : 0 }

    var usesSHA384: Int32 { aead == UInt8(CSystem_AES_256_GCM) ? 1 : 0 }

    // MARK: Opening

    /// Opens the record at `offset` in `buffer[..<end]` in place and moves `offset` past it.
    func open(_ buffer: UnsafeMutableRawBufferPointer, end: Int, offset: inout Int, ciphers: TLSCiphers) -> Inbound {
        guard !failed else { return .failure }
        guard end - offset >= Self.headerLength else { return .needMore }
        let start = offset
        let outer = buffer[start]
        let length = Int(buffer[start + 3]) << 8 | Int(buffer[start + 4])
        // Refused from its first five bytes, as OpenSSL does: a peer sending something that is not a record (say,
        // cleartext HTTP) is not left waiting for a body its "length" made up.
        if let alert = headerAlert(outer, buffer[start + 1], buffer[start + 2]) { return fail(alert, ciphers) }
        // RFC 8446 section 5.2 and RFC 5246 section 6.2.3: the largest ciphertext a peer may send.
        if length > min(Self.maxPlaintext, maxFragment) + (isTLS13 ? 256 : 2048) { return fail(.recordOverflow, ciphers) }
        guard end - start >= Self.headerLength + length else { return .needMore }
        offset = start + Self.headerLength + length

        let explicitLength = explicitNonceLength
        guard length >= explicitLength + Self.tagLength, read.sequence != .max else { return fail(.badRecordMAC, ciphers) }
        let textStart = start + Self.headerLength + explicitLength
        let cipherLength = length - explicitLength - Self.tagLength
        let record = buffer.baseAddress!.assumingMemoryBound(to: UInt8.self) + start
        guard decrypt(record, cipherLength: cipherLength, ciphers: ciphers) else { return fail(.badRecordMAC, ciphers) }
        read.sequence += 1

        var plainLength = cipherLength
        var type = outer
        if isTLS13 {
            // TLSInnerPlaintext (RFC 8446 section 5.4): the content, its type, then zero padding, 2^14 + 1 bytes
            // at most; a record that is padding alone has no type.
            if cipherLength > Self.maxPlaintext + 1 { return fail(.recordOverflow, ciphers) }
            while plainLength > 0 && buffer[textStart + plainLength - 1] == 0 { plainLength -= 1 }
            guard plainLength > 0 else { return fail(.unexpectedMessage, ciphers) }
            plainLength -= 1
            type = buffer[textStart + plainLength]
        }
        if plainLength > min(Self.maxPlaintext, maxFragment) { return fail(.recordOverflow, ciphers) }
        guard let content = TLSContentType(rawValue: type), content != .changeCipherSpec else {
            return fail(.unexpectedMessage, ciphers)
        }
        // A handshake message in pieces must not have anything else between them (RFC 8446 section 5.1).
        if handshake.inProgress && content != .handshake { return fail(.unexpectedMessage, ciphers) }
        if plainLength == 0 {
            // TLS 1.3 allows empty records of application data only, TLS 1.2 no empty alert (OpenSSL takes it as an
            // alert too short to read); in both versions a run of them is a peer making the server work for nothing.
            if (isTLS13 && content != .applicationData) || content == .alert {
                return fail(.unexpectedMessage, ciphers)
            }
            limits.emptyRecords += 1
            return limits.emptyRecords > limits.maxEmptyRecords ? fail(.unexpectedMessage, ciphers) : .control
        }
        limits.opened(content)
        let body = UnsafeRawBufferPointer(start: record + (textStart - start), count: plainLength)
        switch content {
        case .applicationData: return .data(textStart..<textStart + plainLength)
        case .alert: return alert(body, ciphers)
        case .handshake: return handshakeMessages(body, ciphers)
        case .changeCipherSpec: return fail(.unexpectedMessage, ciphers)
        }
    }

    /// The checks a record's header allows before its body arrives, in OpenSSL's order: version, then content
    /// type. TLS 1.3 protects everything as application data with legacy version 1.2; a ChangeCipherSpec after the
    /// handshake is unexpected in either version (RFC 8446 section 5, RFC 5246 section 7.1).
    private func headerAlert(_ type: UInt8, _ major: UInt8, _ minor: UInt8) -> TLSAlert? {
        if isTLS13 {
            if major != 3 { return .protocolVersion }
            if type != TLSContentType.applicationData.rawValue { return .unexpectedMessage }
            if minor != 3 { return .decodeError }
            return nil
        }
        if major != 3 || minor != 3 { return .protocolVersion }
        switch TLSContentType(rawValue: type) {
        case .alert, .handshake, .applicationData: return nil
        case .changeCipherSpec, nil: return .unexpectedMessage
        }
    }

    private func decrypt(_ record: UnsafeMutablePointer<UInt8>, cipherLength: Int, ciphers: TLSCiphers) -> Bool {
        let explicitLength = explicitNonceLength
        var nonce = RecordNonce(iv: read.iv, sequence: read.sequence, explicit: explicitLength > 0 ? record + 5 : nil)
        var aad =
            isTLS13
            ? RecordAdditionalData(header: record)
            : RecordAdditionalData(sequence: read.sequence, type: record[0], length: cipherLength)
        let text = record + Self.headerLength + explicitLength
        guard let context = ciphers.opener(aead) else { return false }
        return withUnsafeBytes(of: &read.key) { key in
            withUnsafeBytes(of: &nonce.bytes) { nonceBytes in
                withUnsafeBytes(of: &aad.bytes) { aadBytes in
                    CSystem_tls_aead_open(
                        context, key.baseAddress!.assumingMemoryBound(to: UInt8.self),
                        nonceBytes.baseAddress!.assumingMemoryBound(to: UInt8.self),
                        aadBytes.baseAddress!.assumingMemoryBound(to: UInt8.self), aad.count, text, cipherLength,
                        text + cipherLength) == 1
                }
            }
        }
    }

    /// An alert, as OpenSSL takes it: exactly two bytes; TLS 1.2 warnings (and TLS 1.3 user_canceled) counted and
    /// otherwise ignored; close_notify ends the input; every other alert ends the connection.
    private func alert(_ body: UnsafeRawBufferPointer, _ ciphers: TLSCiphers) -> Inbound {
        guard body.count == 2 else { return fail(.unexpectedMessage, ciphers) }
        let level = body[0]
        let description = body[1]
        let userCanceled = description == TLSAlert.userCanceled.rawValue
        if level == 1 || (isTLS13 && userCanceled) {
            limits.warnings += 1
            if limits.warnings >= limits.maxWarnings { return fail(.unexpectedMessage, ciphers) }
        }
        if isTLS13 && userCanceled { return .control }  // a close_notify follows it
        if description == TLSAlert.closeNotify.rawValue && (isTLS13 || level == 1) { return .closeNotify }
        if level == 2 || isTLS13 {
            // Nothing is sent after a fatal alert, in either direction.
            failed = true
            outputClosed = true
            return .failure
        }
        // Sent by a peer whose own renegotiation was refused; this server never asks for one.
        if description == TLSAlert.noRenegotiation.rawValue { return fail(.handshakeFailure, ciphers) }
        return level == 1 ? .control : fail(.illegalParameter, ciphers)
    }

    /// Handshake bytes after the handshake, fed to the message being assembled; acts on each message completed.
    private func handshakeMessages(_ body: UnsafeRawBufferPointer, _ ciphers: TLSCiphers) -> Inbound {
        var index = 0
        while index < body.count {
            switch handshake.take(body, at: &index) {
            case .incomplete:
                break
            case .header(let type, let length):
                // Known as soon as its header is: a message the server never accepts now, or one too long.
                if let alert = refusal(type: type, length: length) { return fail(alert, ciphers) }
                if length == 0 {
                    let result = completed(type, firstByte: nil, length: 0, atRecordEnd: index == body.count, ciphers)
                    if result != .control { return result }
                }
            case .message(let type, let firstByte, let length):
                let result = completed(type, firstByte: firstByte, length: length, atRecordEnd: index == body.count, ciphers)
                if result != .control { return result }
            }
        }
        return .control
    }

    private func refusal(type: UInt8, length: Int) -> TLSAlert? {
        if isTLS13 {
            // KeyUpdate (RFC 8446 section 4.6.3) is the only message a client may send after the handshake; its
            // body is one byte, and OpenSSL refuses a longer message before reading it.
            guard type == HandshakeAssembly.keyUpdate else { return .unexpectedMessage }
            return length > 1 ? .illegalParameter : nil
        }
        // A ClientHello asks to renegotiate; nothing else may come from a client now.
        guard type == HandshakeAssembly.clientHello else { return .unexpectedMessage }
        return length > limits.maxHandshakeMessage ? .illegalParameter : nil
    }

    private func completed(
        _ type: UInt8, firstByte: UInt8?, length: Int, atRecordEnd: Bool, _ ciphers: TLSCiphers
    ) -> Inbound {
        if !isTLS13 {
            // Refused with a warning, and the connection goes on as it was (OpenSSL with SSL_OP_NO_RENEGOTIATION).
            limits.renegotiations += 1
            if limits.renegotiations > limits.maxRenegotiations { return fail(.unexpectedMessage, ciphers) }
            guard write.sequence < limits.maxRecordsPerKey else {
                // The key has sealed all it may: no warning, the end.
                keyExhausted = true
                sealCloseNotify(ciphers: ciphers)
                return .closeNotify
            }
            sealControl(.alert, [1, TLSAlert.noRenegotiation.rawValue], ciphers)
            return .control
        }
        limits.keyUpdates += 1
        if limits.keyUpdates > limits.maxKeyUpdates { return fail(.illegalParameter, ciphers) }
        // The keys change after it: a KeyUpdate must end its record.
        guard atRecordEnd else { return fail(.unexpectedMessage, ciphers) }
        guard length == 1, let request = firstByte else { return fail(.decodeError, ciphers) }
        guard request <= 1 else { return fail(.illegalParameter, ciphers) }
        guard updateKeys(&read) else { return fail(.internalError, ciphers) }
        if request == 1 && !outputClosed {
            // update_requested: our own KeyUpdate, sealed with the old keys, then the new keys for what follows.
            guard sealKeyUpdate(ciphers) else { return fail(.internalError, ciphers) }
        }
        return .control
    }

    private func fail(_ alert: TLSAlert, _ ciphers: TLSCiphers) -> Inbound {
        failed = true
        sealControl(.alert, [2, alert.rawValue], ciphers)
        return .failure
    }
}
