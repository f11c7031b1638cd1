import CSystem

/// The record layer's output side: traffic keys (KeyUpdate, the sealing context given back when idle) and
/// sealing records, alerts and close_notify.
extension TLSRecordLayer {
    // MARK: Keys

    /// TLS 1.3 KeyUpdate: the next traffic secret, key and IV of one direction (RFC 8446 section 7.2).
    func updateKeys(_ direction: inout CSystem_TLSDirection) -> Bool {
        let secretLength = self.secretLength
        let keyLength = self.keyLength
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
    func sealKeyUpdate(_ ciphers: TLSCiphers) -> Bool {
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
        if content.count > 0 {
            UnsafeMutableRawPointer(text).copyMemory(from: content.baseAddress!, byteCount: content.count)
        }
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
    func sealControl(_ type: TLSContentType, _ message: [UInt8], _ ciphers: TLSCiphers) {
        guard !outputClosed, write.sequence < .max else { return }
        let start = unsent.count
        unsent.append(contentsOf: repeatElement(0, count: message.count + overhead))
        let sealed = message.withUnsafeBytes { input in
            unsent.withUnsafeMutableBytes { output in sealRecord(type, input, at: output.baseAddress! + start, ciphers)
            }
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
}
