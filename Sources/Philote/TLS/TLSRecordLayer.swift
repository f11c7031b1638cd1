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
    private let keyLength: Int
    private let secretLength: Int
    /// The plaintext a record may carry either way: 2^14, or less when the client negotiated RFC 6066
    /// max_fragment_length (embedded stacks with small buffers do).
    let maxFragment: Int
    private var read: CSystem_TLSDirection
    private var write: CSystem_TLSDirection
    var limits: TLSRecordLimits
    private var handshake = HandshakeAssembly()
    /// Sealed records the socket has not taken yet; empty (no storage) otherwise.
    var unsent: [UInt8] = []
    /// close_notify or a fatal alert is sealed: nothing may follow it.
    private(set) var outputClosed = false
    /// A fatal alert was sent or received: a TLS 1.2 session leaves the server's cache (RFC 5246 section 7.2.2).
    private(set) var failed = false
    /// TLS 1.2 could not seal more records with its key (`TLSRecordLimits.maxRecordsPerKey`).
    private(set) var keyExhausted = false
    /// A context keyed with the write key, held while the connection is sending often (see `keySealing`):
    /// without it each record sets up the key schedule again, which costs more than sealing a small record.
    private var sealContext: UnsafeMutableRawPointer?
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
    private var explicitNonceLength: Int { !isTLS13 && aead != UInt8(CSystem_CHACHA20_POLY1305) ? 8 : 0 }

    private var usesSHA384: Int32 { aead == UInt8(CSystem_AES_256_GCM) ? 1 : 0 }

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

    // MARK: Keys

    /// TLS 1.3 KeyUpdate: the next traffic secret, key and IV of one direction (RFC 8446 section 7.2).
    private func updateKeys(_ direction: inout CSystem_TLSDirection) -> Bool {
        let secretLength = secretLength
        let keyLength = keyLength
        let sha384 = usesSHA384
        var next = direction.secret
        let derived = withUnsafeBytes(of: &direction.secret) { secret in
            withUnsafeMutableBytes(of: &next) { next in
                CSystem_tls13_next_secret(
                    sha384, secret.baseAddress!.assumingMemoryBound(to: UInt8.self), secretLength,
                    next.baseAddress!.assumingMemoryBound(to: UInt8.self)) == 1
            }
        }
        guard derived else { return false }
        direction.secret = next
        withUnsafeMutableBytes(of: &next) { CSystem_cleanse($0.baseAddress, $0.count) }
        direction.sequence = 0
        var key = direction.key
        var iv = direction.iv
        let ok = withUnsafeBytes(of: &direction.secret) { secret in
            withUnsafeMutableBytes(of: &key) { key in
                withUnsafeMutableBytes(of: &iv) { iv in
                    CSystem_tls13_traffic_keys(
                        sha384, secret.baseAddress!.assumingMemoryBound(to: UInt8.self), secretLength,
                        key.baseAddress!.assumingMemoryBound(to: UInt8.self), keyLength,
                        iv.baseAddress!.assumingMemoryBound(to: UInt8.self)) == 1
                }
            }
        }
        direction.key = key
        direction.iv = iv
        withUnsafeMutableBytes(of: &key) { CSystem_cleanse($0.baseAddress, $0.count) }
        return ok
    }

    /// Our KeyUpdate (update_not_requested) into `unsent` under the current keys, then new write keys.
    private func sealKeyUpdate(_ ciphers: TLSCiphers) -> Bool {
        sealControl(.handshake, [HandshakeAssembly.keyUpdate, 0, 0, 1, 0], ciphers)
        return changeWriteKeys()
    }

    /// The next write keys (TLS 1.3), as after sending a KeyUpdate.
    func changeWriteKeys() -> Bool {
        guard updateKeys(&write) else { return false }
        if let sealContext {
            CSystem_tls_aead_free(sealContext)
            self.sealContext = nil
            keySealing()
        }
        return true
    }

    /// Keeps a sealing context keyed with the write key until `releaseSealing`. False when none could be made.
    @discardableResult
    func keySealing() -> Bool {
        if sealContext == nil {
            sealContext = withUnsafeBytes(of: &write.key) {
                CSystem_tls_aead_new(Int32(aead), $0.baseAddress!.assumingMemoryBound(to: UInt8.self), 1)
            }
        }
        return sealContext != nil
    }

    func releaseSealing() {
        if let sealContext { CSystem_tls_aead_free(sealContext) }
        sealContext = nil
    }

    var holdsSealingContext: Bool { sealContext != nil }

    /// Records opened and sealed with the current keys.
    var readSequence: UInt64 { read.sequence }
    var writeSequence: UInt64 { write.sequence }

    /// Moves the sequence numbers on, as if that many records had gone each way: how tests reach the end of a
    /// key's life without sealing 2^64 records.
    func setSequences(read: UInt64, write: UInt64) {
        self.read.sequence = read
        self.write.sequence = write
    }

    // MARK: Sealing

    /// Seals `plaintext` as application data into `out`, in records of at most `maxFragment` bytes, as much as
    /// fits. Returns the plaintext bytes taken and the record bytes written, or nil if nothing more may be sealed
    /// (sealing failed, output is closed, or a TLS 1.2 key is used up: `keyExhausted`, then the caller seals
    /// close_notify).
    func seal(
        _ plaintext: UnsafeRawBufferPointer, into out: UnsafeMutableRawBufferPointer, ciphers: TLSCiphers
    ) -> (consumed: Int, sealed: Int)? {
        guard !outputClosed else { return nil }
        let overhead = overhead
        let fragment = min(Self.maxPlaintext, maxFragment)
        var consumed = 0
        var sealed = 0
        while consumed < plaintext.count {
            if isTLS13 && write.sequence + 1 >= limits.maxRecordsPerKey {
                // A KeyUpdate is the key's last record: the next ones go out under new keys.
                guard out.count - sealed >= 5 + overhead + overhead + 1 else { break }
                let keyUpdate: [UInt8] = [HandshakeAssembly.keyUpdate, 0, 0, 1, 0]
                let written = keyUpdate.withUnsafeBytes {
                    sealRecord(.handshake, $0, at: out.baseAddress! + sealed, ciphers)
                }
                guard written > 0, changeWriteKeys() else { return nil }
                sealed += written
            } else if write.sequence >= limits.maxRecordsPerKey {
                // TLS 1.2 cannot change keys: what this key sealed goes out, then only close_notify.
                keyExhausted = true
                if consumed > 0 { break }
                return nil
            }
            let chunk = min(plaintext.count - consumed, fragment, out.count - sealed - overhead)
            guard chunk > 0 else { break }
            let written = sealRecord(
                .applicationData, UnsafeRawBufferPointer(rebasing: plaintext[consumed..<consumed + chunk]),
                at: out.baseAddress! + sealed, ciphers)
            guard written > 0 else { return nil }
            consumed += chunk
            sealed += written
        }
        return (consumed, sealed)
    }

    /// Seals `content` of `type` as one record at `out` (room for the content plus `overhead`); returns the
    /// record's length, or 0 when sealing failed. (Tests and the fuzz target also play a peer with it, on a layer
    /// whose directions are swapped.)
    func sealRecord(
        _ type: TLSContentType, _ content: UnsafeRawBufferPointer, at out: UnsafeMutableRawPointer,
        _ ciphers: TLSCiphers
    ) -> Int {
        let record = out.assumingMemoryBound(to: UInt8.self)
        let explicitLength = explicitNonceLength
        let innerLength = content.count + (isTLS13 ? 1 : 0)
        let body = explicitLength + innerLength + Self.tagLength
        record[0] = isTLS13 ? TLSContentType.applicationData.rawValue : type.rawValue
        record[1] = 3
        record[2] = 3
        record[3] = UInt8(truncatingIfNeeded: body >> 8)
        record[4] = UInt8(truncatingIfNeeded: body)
        let sequence = write.sequence
        if explicitLength > 0 {
            // The explicit nonce: the sequence number, unique per key as RFC 5288 asks.
            for index in 0..<8 { record[5 + index] = UInt8(truncatingIfNeeded: sequence >> (56 - 8 * index)) }
        }
        let text = record + Self.headerLength + explicitLength
        if content.count > 0 { UnsafeMutableRawPointer(text).copyMemory(from: content.baseAddress!, byteCount: content.count) }
        // TLSInnerPlaintext: the content, then its type, sealed with one update instead of two (each costs several
        // hundred instructions of provider dispatch, and fan-out records are small).
        if isTLS13 { text[content.count] = type.rawValue }
        var nonce = RecordNonce(iv: write.iv, sequence: sequence, explicit: explicitLength > 0 ? record + 5 : nil)
        var aad =
            isTLS13
            ? RecordAdditionalData(header: record)
            : RecordAdditionalData(sequence: sequence, type: type.rawValue, length: content.count)
        guard let context = sealContext ?? ciphers.sealer(aead) else { return 0 }
        let keyed = sealContext != nil
        let ok = withUnsafeBytes(of: &write.key) { key in
            withUnsafeBytes(of: &nonce.bytes) { nonceBytes in
                withUnsafeBytes(of: &aad.bytes) { aadBytes in
                    CSystem_tls_aead_seal(
                        context, keyed ? nil : key.baseAddress!.assumingMemoryBound(to: UInt8.self),
                        nonceBytes.baseAddress!.assumingMemoryBound(to: UInt8.self),
                        aadBytes.baseAddress!.assumingMemoryBound(to: UInt8.self), aad.count, text, innerLength,
                        text + innerLength) == 1
                }
            }
        }
        guard ok else { return 0 }
        write.sequence += 1
        return Self.headerLength + body
    }

    /// Seals an alert or handshake message into `unsent`, behind what is already there. Nothing follows
    /// close_notify or a fatal alert, and a sequence number never wraps.
    private func sealControl(_ type: TLSContentType, _ message: [UInt8], _ ciphers: TLSCiphers) {
        guard !outputClosed, write.sequence < .max else { return }
        let start = unsent.count
        unsent.append(contentsOf: repeatElement(0, count: message.count + overhead))
        let sealed = message.withUnsafeBytes { input in
            unsent.withUnsafeMutableBytes { output in sealRecord(type, input, at: output.baseAddress! + start, ciphers) }
        }
        unsent.removeSubrange((start + sealed)...)
        if type == .alert && (message[1] == TLSAlert.closeNotify.rawValue || message[0] == 2) {
            outputClosed = true
        }
    }

    /// Seals close_notify (once) into `unsent`.
    func sealCloseNotify(ciphers: TLSCiphers) {
        sealControl(.alert, [1, TLSAlert.closeNotify.rawValue], ciphers)
    }

    /// Refuses the input: the fatal alert into `unsent`, and nothing more is opened.
    private func fail(_ alert: TLSAlert, _ ciphers: TLSCiphers) -> Inbound {
        failed = true
        sealControl(.alert, [2, alert.rawValue], ciphers)
        return .failure
    }
}
