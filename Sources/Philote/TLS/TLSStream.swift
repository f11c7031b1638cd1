import CSystem

/// One connection's TLS. OpenSSL runs the handshake, driven by the reactor (every call is non-blocking and
/// reports what it waits for, which the connection turns into epoll interest). Then, by default, it hands over the
/// traffic keys and its SSL object is freed, and `TLSRecordLayer` protects the records: an idle connection keeps
/// about 300 bytes of TLS state instead of OpenSSL's 14 KB (CSystemTLSTraffic.c, BENCHMARKS.md). With
/// `TLS_RECORD_LAYER=openssl` OpenSSL keeps the connection (SSL_read, SSL_write).
final class TLSStream {
    enum Status: Equatable {
        case done
        case wantRead
        case wantWrite
        case failed
    }

    /// How reading ended.
    enum ReadEnd: Equatable {
        /// Everything the socket had is read (or the connection closed while it was delivered).
        case wouldBlock
        /// The peer's close_notify.
        case closeNotify
        /// The input was refused (the fatal alert is sent or waits in `records.unsent`), the peer sent a fatal
        /// alert, or the stream ended without close_notify.
        case failed
    }

    /// TLS_RECORD_LAYER=openssl: SSL_read calls (a record each, at most) for one readiness event.
    static let readsPerEvent = 16

    /// How long a connection that stopped sending keeps its keyed sealing context (ms).
    static let sealingKeptFor: UInt64 = 1_000

    /// OpenSSL's connection: during the handshake, and for the whole connection with TLS_RECORD_LAYER=openssl.
    private var ssl: OpaquePointer?
    /// The records after a hand-over.
    private(set) var records: TLSRecordLayer?
    private let mode: TLSRecordLayerMode
    private(set) var handshakeComplete = false
    /// The last handshake step or OpenSSL read could not proceed until the socket is writable.
    private(set) var wantsWrite = false
    /// The start of a record the socket has delivered only part of; empty (no storage) otherwise.
    var partialRecord: [UInt8] = []
    /// After a fatal alert or a failed handshake: what the peer still sends is read and dropped until its FIN,
    /// so that closing the socket does not reset the connection before the peer has read the alert.
    var discardsInput = false
    /// When records were last sealed (loop ms; 0: never).
    private var lastSealAt: UInt64 = 0
    /// Data messages and plaintext bytes whose records (some of them) wait in `records.unsent`: counted as sent
    /// once those are written, and never if the connection ends first.
    private var unsentMessages = 0
    private var unsentPlaintext = 0
    /// TLS_RECORD_LAYER=openssl: the length of a write OpenSSL could not finish (it holds a sealed record of those
    /// bytes and must be called again with at least as many), 0 otherwise.
    private(set) var committedPlaintext = 0

    init?(context: TLSContext, fd: Int32) {
        guard let tls = CSystem_tls_new(context.pointer, fd) else { return nil }
        ssl = tls
        mode = context.recordLayer
    }

    deinit {
        if let ssl { CSystem_tls_free(ssl) }
    }

    /// Advances the handshake; `.done` once it is over (and, by default, the traffic keys are taken and OpenSSL is
    /// gone).
    func handshake() -> Status {
        guard !handshakeComplete else { return records != nil || ssl != nil ? .done : .failed }
        guard let tls = ssl else { return .failed }
        let result = CSystem_tls_handshake(tls)
        wantsWrite = result == Int32(CSystem_TLS_WANT_WRITE)
        switch result {
        case 1:
            handshakeComplete = true
            guard mode == .builtin else { return .done }
            ssl = nil
            var handOver = CSystem_TLSHandOver()
            defer { withUnsafeMutableBytes(of: &handOver) { CSystem_cleanse($0.baseAddress, $0.count) } }
            guard CSystem_tls_detach(tls, &handOver) == 1 else { return .failed }
            records = TLSRecordLayer(handOver)
            return .done
        case Int32(CSystem_TLS_WANT_READ): return .wantRead
        case Int32(CSystem_TLS_WANT_WRITE): return .wantWrite
        default: return .failed
        }
    }

    /// OpenSSL owns the socket for reading (the handshake, or TLS_RECORD_LAYER=openssl).
    var readsThroughOpenSSL: Bool { ssl != nil }

    // MARK: Reading

    /// TLS_RECORD_LAYER=openssl: decrypts what the socket has, a buffer at a time, until OpenSSL wants more.
    /// `deliver` returns false once the connection is gone.
    func readThroughOpenSSL(
        into buffer: UnsafeMutableRawBufferPointer, deliver: (UnsafeMutableRawBufferPointer) -> Bool
    ) -> ReadEnd {
        guard let ssl else { return .failed }
        wantsWrite = false
        var reads = 0
        while true {
            let result = CSystem_tls_read(ssl, buffer.baseAddress, Int32(buffer.count))
            if result > 0 {
                guard deliver(UnsafeMutableRawBufferPointer(rebasing: buffer[..<Int(result)])) else { return .wouldBlock }
                reads += 1
                // A client that sends without pause gets its turn like the others: the socket will say again that
                // it has more, but nothing would say so of what OpenSSL already holds.
                if reads >= Self.readsPerEvent && SSL_has_pending(ssl) == 0 { return .wouldBlock }
                continue
            }
            switch result {
            case Int32(CSystem_TLS_WANT_READ): return .wouldBlock
            case Int32(CSystem_TLS_WANT_WRITE):
                wantsWrite = true
                return .wouldBlock
            case Int32(CSystem_TLS_CLOSED): return .closeNotify
            default: return .failed
            }
        }
    }

    /// Opens the records in `buffer[..<end]` (what the socket gave, after `partialRecord`); keeps an incomplete
    /// last one in `partialRecord`.
    func openRecords(
        _ buffer: UnsafeMutableRawBufferPointer, end: Int, ciphers: TLSCiphers,
        deliver: (UnsafeMutableRawBufferPointer) -> Bool
    ) -> ReadEnd {
        guard let records else { return .failed }
        var offset = 0
        while true {
            switch records.open(buffer, end: end, offset: &offset, ciphers: ciphers) {
            case .data(let plaintext):
                guard deliver(UnsafeMutableRawBufferPointer(rebasing: buffer[plaintext])) else { return .wouldBlock }
            case .needMore:
                if offset < end { partialRecord = Array(buffer[offset..<end]) }
                return .wouldBlock
            case .control:
                continue
            case .closeNotify:
                return .closeNotify
            case .failure:
                return .failed
            }
        }
    }

    // MARK: Writing

    /// Records sealed earlier that wait for the socket (alerts, KeyUpdates, data it did not take).
    var unsentCount: Int { records?.unsent.count ?? 0 }

    /// `send` took `bytes` of plaintext, ending `messages` data messages, but the socket did not take all of
    /// their records.
    func awaitUnsent(messages: Int, bytes: Int) {
        unsentMessages += messages
        unsentPlaintext += bytes
    }

    /// After `writeUnsent` wrote everything: the messages and plaintext bytes that are now on the wire.
    func takeWrittenUnsent() -> (messages: Int, bytes: Int) {
        defer { (unsentMessages, unsentPlaintext) = (0, 0) }
        return (unsentMessages, unsentPlaintext)
    }

    /// Writes what waits in `unsent`; true when nothing waits any more.
    func writeUnsent(_ fd: Int32) throws(Errno) -> Bool {
        guard let records, !records.unsent.isEmpty else { return true }
        let result: Result<IOResult<Int>, Errno> = records.unsent.withUnsafeBytes { bytes in
            do throws(Errno) { return .success(try Socket.write(fd, bytes)) } catch { return .failure(error) }
        }
        if case .processed(let written) = try result.get() {
            records.unsent.removeSubrange(0..<written)
        }
        guard records.unsent.isEmpty else { return false }
        records.unsent = []  // gives the storage back
        return true
    }

    /// Seals (or has OpenSSL seal) `plaintext` and writes the records. Returns the plaintext bytes taken: with the
    /// built-in layer all of them are sealed, and records the socket did not take wait in `unsent`; `blocked` says
    /// the socket is full. nil when the connection cannot go on (with a close_notify in `unsent` if the key is used
    /// up).
    func send(
        _ plaintext: UnsafeRawBufferPointer, fd: Int32, ciphers: TLSCiphers, now: UInt64, sealing: TLSSealingSweep?
    ) throws(Errno) -> (consumed: Int, blocked: Bool)? {
        if let ssl {
            let result = CSystem_tls_write(ssl, plaintext.baseAddress, Int32(plaintext.count))
            if result > 0 {
                committedPlaintext = 0
                return (Int(result), false)
            }
            switch result {
            case Int32(CSystem_TLS_WANT_WRITE), Int32(CSystem_TLS_WANT_READ):
                committedPlaintext = max(committedPlaintext, plaintext.count)
                return (0, true)
            default: return nil
            }
        }
        guard let records else { return nil }
        // A connection that sends again within a second keys a context of its own for as long as it keeps
        // sending: a fan-out subscriber seals a record per message, and keying a shared context for each costs more
        // than the sealing. An idle connection (the upgrade answer, a ping now and then) holds none.
        if !records.holdsSealingContext && lastSealAt != 0 && now &- lastSealAt < Self.sealingKeptFor
            && records.keySealing()
        {
            sealing?.add(self)
        }
        lastSealAt = now
        guard let (consumed, sealed) = records.seal(plaintext, into: ciphers.buffer, ciphers: ciphers), consumed > 0
        else {
            if records.keyExhausted { records.sealCloseNotify(ciphers: ciphers) }
            return nil
        }
        let sealedRecords = UnsafeRawBufferPointer(rebasing: ciphers.buffer[..<sealed])
        switch try Socket.write(fd, sealedRecords) {
        case .processed(let written) where written == sealed:
            return (consumed, false)
        case .processed(let written):
            records.unsent.append(contentsOf: sealedRecords[written...])
        case .wouldBlock:
            records.unsent.append(contentsOf: sealedRecords)
        }
        return (consumed, true)
    }

    /// Drops the keyed sealing context if the connection has not sealed for `sealingKeptFor`; true when it holds
    /// none (any more).
    func releaseIdleSealing(now: UInt64) -> Bool {
        guard let records, records.holdsSealingContext else { return true }
        guard now &- lastSealAt >= Self.sealingKeptFor else { return false }
        records.releaseSealing()
        return true
    }

    /// close_notify, once: queued in `unsent` (built-in layer) or sent by OpenSSL, best effort.
    func closeNotify(ciphers: TLSCiphers) {
        if let ssl {
            if handshakeComplete { CSystem_tls_close_notify(ssl) }
        } else {
            records?.sealCloseNotify(ciphers: ciphers)
        }
    }

    /// The connection is gone: key material it no longer needs is freed now rather than at the next sweep.
    func closed() {
        records?.releaseSealing()
    }
}
