/// How a connection's bytes cross its socket: as they are (`PlainTransport`) or in TLS records
/// (`TLSTransport`). The connection's flush loop and read path are written once over this contract; the two
/// kinds differ only behind it. `Transport` picks one without dynamic dispatch on the per-delivery path.
protocol ByteTransport {
    /// Whether output can be written before anything new: the handshake is over and earlier records are out.
    /// The socket is writable, so first `resume` continues a read that waited for that (a TLS handshake, an
    /// OpenSSL read); it returns false when the connection closed meanwhile (then: `.gone`).
    func prepareOutput(resume: () -> Bool) -> TransportOutput
    /// Writes from the first `count` of the loop's gathered vectors, `bytes` in all. What `.wrote` reports is on
    /// the wire, and the connection counts it.
    func write(count: Int, bytes: Int) -> TransportWrite
    /// What a write blocked with records waiting consumed from the queue, finishing `messages` data messages:
    /// counted once on the wire, which for sealed TLS records the socket did not take is later.
    func countWhenWritten(messages: Int, bytes: Int)
    /// After the last queued byte of a closing connection: ends the stream (TLS close_notify) and shuts the
    /// write side.
    func finishOutput() -> TransportOutput
    /// Something must be written when the socket allows, whatever the queue holds (TLS records, a handshake).
    var wantsWritable: Bool { get }
    /// One readiness event's input, handed to `deliver` as plaintext; `deliver` returns false once the
    /// connection has closed, and reading stops.
    func read(into buffer: UnsafeMutableRawBufferPointer, deliver: (UnsafeMutableRawBufferPointer) -> Bool)
        -> TransportRead
    /// Plaintext bytes at the front of the queue that the transport has committed to send (a slow consumer's
    /// queue keeps them when the rest is dropped).
    var committedPlaintext: Int { get }
    /// The transport cannot go on: input is read and dropped from now on, until the peer's FIN.
    func stopInput()
    /// The socket is closed.
    func closed()
}

/// Whether output can proceed.
enum TransportOutput {
    case ready
    /// Waiting for the socket (or the handshake): the connection asks for writability.
    case waiting
    /// The peer is gone (a write error): close now.
    case failed
    /// The connection closed while `resume` ran: nothing more to do.
    case gone
}

/// How a write went.
enum TransportWrite {
    /// These bytes were consumed; more may be written.
    case wrote(Int)
    /// These bytes were consumed, and the socket takes no more now. With `recordsWaiting`, some of them are in
    /// sealed TLS records the socket did not take (`countWhenWritten`); otherwise they are on the wire.
    case blocked(Int, recordsWaiting: Bool)
    /// Queued plaintext is no longer taken (TLS has ended): it stays to be dropped.
    case stopped
    /// The peer is gone: close now.
    case failed
    /// The transport cannot go on (TLS): send its alert, stop reading, close after the peer's FIN.
    case ended
}

/// How a read went.
enum TransportRead {
    /// Read what there was.
    case done
    /// The transport waits for the socket (a handshake, records to write): interest must be updated, and with
    /// `flush`, records wait to be written.
    case waiting(flush: Bool)
    /// The stream ended (FIN, a read error, TLS close_notify): close now.
    case closed
    /// The transport cannot go on (TLS): as `TransportWrite.ended`.
    case ended
}
