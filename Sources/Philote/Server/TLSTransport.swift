/// Bytes in TLS records: OpenSSL's handshake, driven by readiness, then records sealed and opened by
/// `TLSSession` (the built-in record layer, or OpenSSL's own with `TLS_RECORD_LAYER=openssl`). Queued plaintext
/// is copied into the loop's buffer (64 KiB at a time), sealed, and written with one `write`; records the socket
/// does not take stay in the session (sealed, their sequence numbers spent) and go first next time.
final class TLSTransport: ByteTransport {
    let session: TLSSession
    let fd: Int32
    // unowned(unsafe): the loop and its context outlive every connection on them.
    unowned(unsafe) let context: LoopContext
    /// For log lines.
    let connectionID: UInt64

    init(session: TLSSession, fd: Int32, context: LoopContext, connectionID: UInt64) {
        self.session = session
        self.fd = fd
        self.context = context
        self.connectionID = connectionID
    }

    private var loop: EventLoop { context.loop }

    var takesOutput: Bool { !session.discardsInput }
    var wantsWritable: Bool { session.wantsWrite || session.unsentCount > 0 }
    var resumesOnWritable: Bool { session.wantsWrite && !session.discardsInput }
    var committedPlaintext: Int { session.committedPlaintext }

    func prepareOutput() -> TransportOutput {
        // Output waits for the handshake.
        guard session.handshakeComplete || session.discardsInput else { return .waiting }
        return writeUnsent()
    }

    /// Writes the records the socket did not take earlier (or an alert or KeyUpdate), counting the messages they
    /// finish.
    private func writeUnsent() -> TransportOutput {
        do {
            guard try session.writeUnsent(fd) else { return .waiting }
        } catch {
            return .failed
        }
        let (messages, bytes) = session.takeWrittenUnsent()
        context.metrics.bytesOut.add(fromOwner: UInt64(bytes))
        context.metrics.messagesOut.add(fromOwner: UInt64(messages))
        return .ready
    }

    func write(count: Int, bytes: Int) -> TransportWrite {
        let length = min(bytes, loop.writeBuffer.count)
        loop.gatherCopy(count: count, limit: length)
        let sent: (consumed: Int, blocked: Bool)?
        do {
            sent = try session.send(
                UnsafeRawBufferPointer(rebasing: loop.writeBuffer[..<length]), fd: fd, ciphers: context.tlsCiphers,
                now: loop.now, sealing: context.tlsSealing)
        } catch {
            return .failed
        }
        guard let sent else {
            context.logger.debug("TLS output ended", ["conn": String(connectionID)])
            return .ended
        }
        return sent.blocked ? .blocked(sent.consumed) : .wrote(sent.consumed)
    }

    func account(messages: Int, bytes: Int, blocked: Bool, metrics: LoopMetrics) {
        if blocked {
            // Some of these records wait in the session: they count once they are written.
            session.awaitUnsent(messages: messages, bytes: bytes)
        } else {
            metrics.bytesOut.add(fromOwner: UInt64(bytes))
            metrics.messagesOut.add(fromOwner: UInt64(messages))
        }
    }

    func finishOutput() -> TransportOutput {
        session.closeNotify(ciphers: context.tlsCiphers)
        let written = writeUnsent()
        if case .ready = written { Socket.shutdownWrite(fd) }
        return written
    }

    /// Finishes the handshake, then reads records: one read per readiness event, as for plain connections, since
    /// nothing decrypted waits anywhere but in the socket (an incomplete record is kept by the session; OpenSSL,
    /// when it keeps the connection, is read until it wants more).
    func read(into buffer: UnsafeMutableRawBufferPointer, deliver: (UnsafeMutableRawBufferPointer) -> Bool)
        -> TransportRead
    {
        if session.discardsInput {
            // Dropped; the peer's FIN closes.
            if case .end = PlainTransport.read(fd, into: buffer) { return .closed }
            return .done
        }
        if !session.handshakeComplete {
            switch session.handshake() {
            case .done:
                context.metrics.tlsHandshakes.add(fromOwner: 1)
            case .wantRead, .wantWrite:
                return .waiting(flush: false)
            case .failed:
                context.metrics.tlsHandshakeFailures.add(fromOwner: 1)
                context.logger.debug("TLS handshake failed", ["conn": String(connectionID)])
                return .ended  // OpenSSL has written its alert, if it had one to send
            }
        }
        // Nothing more is done for a connection that closed while its plaintext was delivered.
        var open = true
        let deliverWhileOpen = { (plaintext: UnsafeMutableRawBufferPointer) -> Bool in
            open = deliver(plaintext)
            return open
        }
        let end: TLSSession.ReadEnd
        if session.readsThroughOpenSSL {
            end = session.readThroughOpenSSL(into: buffer, deliver: deliverWhileOpen)
        } else {
            let held = session.partialRecord.count
            switch PlainTransport.read(fd, into: UnsafeMutableRawBufferPointer(rebasing: buffer[held...])) {
            case .none: return .waiting(flush: false)
            case .end: return .closed
            case .data(let count):
                if held > 0 {
                    buffer.copyBytes(from: session.partialRecord)
                    session.partialRecord = []
                }
                end = session.openRecords(
                    buffer, end: held + count, ciphers: context.tlsCiphers, deliver: deliverWhileOpen)
            }
        }
        guard open else { return .done }
        switch end {
        case .wouldBlock:
            // A peer that keeps asking for KeyUpdates without reading the answers must not grow them unbounded.
            if session.unsentCount > context.configuration.maxBackpressure { return .closed }
            return .waiting(flush: session.unsentCount > 0)
        case .closeNotify:
            // The peer's close_notify is answered with ours (RFC 8446 section 6.1) before the socket goes.
            session.closeNotify(ciphers: context.tlsCiphers)
            _ = try? session.writeUnsent(fd)
            return .closed
        case .failed:
            context.logger.debug("TLS record refused", ["conn": String(connectionID)])
            return .ended
        }
    }

    func stopInput() {
        session.discardsInput = true
    }

    func closed() {
        session.closed()
    }
}
