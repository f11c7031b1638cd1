/// A connection's transport, plain or TLS, chosen at accept. An enum rather than an existential, so that a
/// plain connection's calls on the per-delivery flush path are direct and inlined, not witness-table calls.
/// Each member forwards to the chosen `ByteTransport` (see there for what it means).
enum Transport {
    case plain(PlainTransport)
    case tls(TLSTransport)

    @inline(__always)
    func prepareOutput(resume: () -> Bool) -> TransportOutput {
        switch self {
        case .plain(let plain): plain.prepareOutput(resume: resume)
        case .tls(let tls): tls.prepareOutput(resume: resume)
        }
    }

    func countWhenWritten(messages: Int, bytes: Int) {
        switch self {
        case .plain(let plain): plain.countWhenWritten(messages: messages, bytes: bytes)
        case .tls(let tls): tls.countWhenWritten(messages: messages, bytes: bytes)
        }
    }

    @inline(__always)
    func write(count: Int, bytes: Int) -> TransportWrite {
        switch self {
        case .plain(let plain): plain.write(count: count, bytes: bytes)
        case .tls(let tls): tls.write(count: count, bytes: bytes)
        }
    }

    func finishOutput() -> TransportOutput {
        switch self {
        case .plain(let plain): plain.finishOutput()
        case .tls(let tls): tls.finishOutput()
        }
    }

    @inline(__always)
    var wantsWritable: Bool {
        switch self {
        case .plain(let plain): plain.wantsWritable
        case .tls(let tls): tls.wantsWritable
        }
    }

    @inline(__always)
    func read(into buffer: UnsafeMutableRawBufferPointer, deliver: (UnsafeMutableRawBufferPointer) -> Bool)
        -> TransportRead
    {
        switch self {
        case .plain(let plain): plain.read(into: buffer, deliver: deliver)
        case .tls(let tls): tls.read(into: buffer, deliver: deliver)
        }
    }

    var committedPlaintext: Int {
        switch self {
        case .plain(let plain): plain.committedPlaintext
        case .tls(let tls): tls.committedPlaintext
        }
    }

    func stopInput() {
        switch self {
        case .plain(let plain): plain.stopInput()
        case .tls(let tls): tls.stopInput()
        }
    }

    func closed() {
        switch self {
        case .plain(let plain): plain.closed()
        case .tls(let tls): tls.closed()
        }
    }
}
