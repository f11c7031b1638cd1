/// Bytes in TLS records: OpenSSL's handshake, driven by readiness, then records sealed and opened by
/// `TLSStream` (the built-in record layer, or OpenSSL's own with `TLS_RECORD_LAYER=openssl`). Queued plaintext
/// is copied into the loop's buffer (64 KiB at a time), sealed, and written with one `write`; records the socket
/// does not take stay in the stream (sealed, their sequence numbers spent) and go first next time.
final class TLSTransport: ByteTransport {
    let stream: TLSStream
    let fd: Int32
    // unowned(unsafe): the loop and its services outlive every connection on them.
    unowned(unsafe) let services: LoopServices
    /// For log lines.
    let connectionID: UInt64

    init(stream: TLSStream, fd: Int32, services: LoopServices, connectionID: UInt64) {
        self.stream = stream
        self.fd = fd
        self.services = services
        self.connectionID = connectionID
    }

    private var loop: EventLoop { services.loop }

    var wantsWritable: Bool { stream.wantsWrite || stream.unsentCount > 0 }
    var committedPlaintext: Int { stream.committedPlaintext }

    func prepareOutput(resume: () -> Bool) -> TransportOutput {
        if stream.wantsWrite && !stream.discardsInput {
            guard resume() else { return .gone }
        }
        // Output waits for the handshake.
        guard stream.handshakeComplete || stream.discardsInput else { return .waiting }
        return writeUnsent()
    }

    /// Writes the records the socket did not take earlier (or an alert or KeyUpdate), counting the messages they
    /// finish.
    private func writeUnsent() -> TransportOutput {
        do {
            guard try stream.writeUnsent(fd) else { return .waiting }
        } catch {
            return .failed
        }
        let (messages, bytes) = stream.takeWrittenUnsent()
        services.metrics.bytesOut.add(fromOwner: UInt64(bytes))
        services.metrics.messagesOut.add(fromOwner: UInt64(messages))
        return .ready
    }

    func write(count: Int, bytes: Int) -> TransportWrite {
        guard !stream.discardsInput else { return .stopped }
        let length = min(bytes, loop.writeBuffer.count)
        loop.gatherCopy(count: count, limit: length)
        let sent: (consumed: Int, blocked: Bool)?
        do {
            sent = try stream.send(
                UnsafeRawBufferPointer(rebasing: loop.writeBuffer[..<length]), fd: fd, ciphers: services.tlsCiphers,
                now: loop.now, sealing: services.tlsSealing)
        } catch {
            return .failed
        }
        guard let sent else {
            services.logger.debug("TLS output ended", ["conn": String(connectionID)])
            return .ended
        }
        return sent.blocked ? .blocked(sent.consumed, recordsWaiting: true) : .wrote(sent.consumed)
    }

    func countWhenWritten(messages: Int, bytes: Int) {
        // Some of these records wait in the stream: they count once they are written.
        stream.awaitUnsent(messages: messages, bytes: bytes)
    }

    func finishOutput() -> TransportOutput {
        stream.closeNotify(ciphers: services.tlsCiphers)
        let written = writeUnsent()
        if case .ready = written { Socket.shutdownWrite(fd) }
        return written
    }

    /// Finishes the handshake, then reads records: one read per readiness event, as for plain connections, since
    /// nothing decrypted waits anywhere but in the socket (an incomplete record is kept by the stream; OpenSSL,
    /// when it keeps the connection, is read until it wants more).
    func read(into buffer: UnsafeMutableRawBufferPointer, deliver: (UnsafeMutableRawBufferPointer) -> Bool)
        -> TransportRead
    {
        if stream.discardsInput {
            // Dropped; the peer's FIN closes.
            if case .end = PlainTransport.read(fd, into: buffer) { return .closed }
            return .done
        }
        if !stream.handshakeComplete {
            switch stream.handshake() {
            case .done:
                services.metrics.tlsHandshakes.add(fromOwner: 1)
            case .wantRead, .wantWrite:
                return .waiting(flush: false)
            case .failed:
                services.metrics.tlsHandshakeFailures.add(fromOwner: 1)
                services.logger.debug("TLS handshake failed", ["conn": String(connectionID)])
                return .ended  // OpenSSL has written its alert, if it had one to send
            }
        }
        // Nothing more is done for a connection that closed while its plaintext was delivered.
        var open = true
        let deliverWhileOpen = { (plaintext: UnsafeMutableRawBufferPointer) -> Bool in
            open = deliver(plaintext)
            return open
        }
        let end: TLSStream.ReadEnd
        if stream.readsThroughOpenSSL {
            end = stream.readThroughOpenSSL(into: buffer, deliver: deliverWhileOpen)
        } else {
            let held = stream.partialRecord.count
            switch PlainTransport.read(fd, into: UnsafeMutableRawBufferPointer(rebasing: buffer[held...])) {
            case .none: return .waiting(flush: false)
            case .end: return .closed
            case .data(let count):
                if held > 0 {
                    buffer.copyBytes(from: stream.partialRecord)
                    stream.partialRecord = []
                }
                end = stream.openRecords(
                    buffer, end: held + count, ciphers: services.tlsCiphers, deliver: deliverWhileOpen)
            }
        }
        guard open else { return .done }
        switch end {
        case .wouldBlock:
            // A peer that keeps asking for KeyUpdates without reading the answers must not grow them unbounded.
            if stream.unsentCount > services.configuration.maxBackpressure { return .closed }
            return .waiting(flush: stream.unsentCount > 0)
        case .closeNotify:
            // The peer's close_notify is answered with ours (RFC 8446 section 6.1) before the socket goes.
            stream.closeNotify(ciphers: services.tlsCiphers)
            _ = try? stream.writeUnsent(fd)
            return .closed
        case .failed:
            services.logger.debug("TLS record refused", ["conn": String(connectionID)])
            return .ended
        }
    }

    func stopInput() {
        stream.discardsInput = true
    }

    func closed() {
        stream.closed()
    }
}
