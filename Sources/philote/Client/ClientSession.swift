import Philote

#if canImport(Glibc)
    import Glibc
#endif

/// A connected client: one thread running poll(2) over the socket, standard input and the signal descriptor.
/// One thread rather than a reader and a writer: the state (what is queued, whether our close went out)
/// then needs no lock, a pong is queued straight from the read path, and flow control is just "do not read
/// standard input while much is queued for the socket".
///
/// Ending: at end of input (or Ctrl-C) the last line is published, a close 1000 is queued behind every
/// publish, and once it is written the server gets `closeWait` to answer. The server answers a close only
/// after handling every frame before it, so its answer proves that every line was processed.
final class ClientSession {
    static let closeWait: Duration = .seconds(5)
    /// How long queued bytes may wait for the server to read before the client gives up.
    static let stallLimit: Duration = .seconds(30)
    /// Queued bytes above which standard input is not read (back-pressure instead of unbounded memory).
    static let maxQueued = 1 << 20
    /// Time to deliver a close we owe the server before exiting anyway.
    static let farewellLimit: Duration = .seconds(2)

    private enum Phase {
        /// Publishing input and printing messages.
        case open
        /// Our close is queued behind the last publish; `answerBy` starts once it is written.
        case closing(answerBy: Deadline?)
        /// Sending the close we owe the server (it closed first, or broke the protocol), then ending.
        case finishing(flushBy: Deadline)
    }

    private let socket: ClientSocket
    private var fd: Int32 { socket.fd }
    private let channel: String
    private var readsInput: Bool
    private var reader: WebSocketReader
    private var inbound: [UInt8]
    private var outbound: [UInt8] = []
    /// How much of `outbound` is already on the socket (compacted now and then, not per write).
    private var written = 0
    private var stallDeadline = Deadline(after: stallLimit)
    private var lines = LineSplitter()
    private let events = ClientEvents()
    private var chunk = [UInt8](repeating: 0, count: 65536)
    /// Mask keys must be unpredictable to the network (RFC 6455 section 10.3): the system's CSPRNG.
    private var random = SystemRandomNumberGenerator()
    private var phase = Phase.open
    private let signals = SignalWatcher()
    private var done = false
    private var failure: ClientFailure?

    /// `received` is what followed the 101 head: frames the server sent before the session started.
    init(socket: ClientSocket, channel: String, readsInput: Bool, received: [UInt8], deflateContextTakeover: Bool?) {
        self.socket = socket
        self.channel = channel
        self.readsInput = readsInput
        // Server frames are unmasked; the cap only guards memory against a broken server.
        reader = WebSocketReader(maxMessageSize: 1 << 30)
        reader.parser.requireMask = false
        if let deflateContextTakeover { reader.enableDeflate(contextTakeover: deflateContextTakeover) }
        inbound = received
    }

    private var queued: Int { outbound.count - written }

    /// Runs until the conversation is over; nil when it ended cleanly.
    func run() -> ClientFailure? {
        if !inbound.isEmpty { handleInbound() }
        while !done {
            checkDeadlines()
            if done { break }
            waitAndHandle()
        }
        socket.close()
        return failure
    }

    private func end(_ failure: ClientFailure?) {
        done = true
        self.failure = failure
    }

    private func checkDeadlines() {
        switch phase {
        case .finishing(let flushBy) where queued == 0 || flushBy.hasPassed:
            done = true
        case .closing(let answerBy?) where answerBy.hasPassed:
            end(ClientFailure("the server did not answer the close within 5 s; messages may not have been delivered"))
        default:
            if queued > 0 && stallDeadline.hasPassed {
                end(ClientFailure("the server stopped reading: nothing could be sent for 30 s"))
            }
        }
    }

    private func waitAndHandle() {
        // TLS may hold decrypted bytes that poll(2) will never signal: read them first.
        if socket.hasBufferedInput, case .finishing = phase {
        } else if socket.hasBufferedInput {
            readSocket()
            return
        }
        var socketEvents: Int16 = 0
        var deadline: Deadline?
        switch phase {
        case .open: socketEvents = Int16(POLLIN)
        case .closing(let answerBy):
            socketEvents = Int16(POLLIN)
            deadline = answerBy
        case .finishing(let flushBy): deadline = flushBy
        }
        if queued > 0 { socketEvents |= Int16(POLLOUT) }
        var fds = [pollfd(fd: fd, events: socketEvents, revents: 0)]
        let watchInput = readsInput && queued < Self.maxQueued
        if watchInput { fds.append(pollfd(fd: 0, events: Int16(POLLIN), revents: 0)) }
        if let signals { fds.append(pollfd(fd: signals.fd, events: Int16(POLLIN), revents: 0)) }
        let timeout = Deadline.pollTimeout(deadline, queued > 0 ? stallDeadline : nil)
        let ready = poll(&fds, nfds_t(fds.count), timeout)
        if ready < 0 {
            if errno != EINTR { end(ClientFailure("poll failed: \(POSIXIO.describe(errno))")) }
            return
        }
        if ready == 0 { return }
        let socket = fds[0].revents
        if socket & Int16(POLLOUT | POLLERR | POLLHUP) != 0 && queued > 0 { flushSocket() }
        if socket & Int16(POLLIN | POLLERR | POLLHUP) != 0 && socketEvents & Int16(POLLIN) != 0 && !done {
            readSocket()
        }
        if watchInput && !done && fds[1].revents != 0, case .open = phase {
            // POLLNVAL: standard input is not open at all; that is simply no input.
            if fds[1].revents & Int16(POLLNVAL) != 0 { startClosing() } else { readInput() }
        }
        if signals != nil && !done && fds[fds.count - 1].revents != 0 { handleSignal() }
    }

    // MARK: Socket

    private func readSocket() {
        let status = chunk.withUnsafeMutableBytes { socket.read(into: $0) }
        switch status {
        case .transferred(let count):
            inbound += chunk[..<count]
            handleInbound()
        case .wouldBlock:
            break
        case .endOfFile:
            connectionLost("the server closed the connection without a close frame")
        case .failed(let code):
            connectionLost(POSIXIO.describe(code))
        }
    }

    private func connectionLost(_ why: String) {
        if case .closing = phase {
            end(ClientFailure("connection lost before the server answered the close: \(why)"))
        } else {
            end(ClientFailure("connection lost: \(why)"))
        }
    }

    private func handleInbound() {
        let outcome = inbound.withUnsafeMutableBytes { reader.read($0, into: events) }
        if outcome.stop == nil {
            inbound.removeFirst(outcome.consumed)
        } else {
            inbound = []
        }
        if !events.output.isEmpty {
            let ok = POSIXIO.writeAll(1, events.output)
            events.output.removeAll(keepingCapacity: true)
            if !ok {
                end(ClientFailure("cannot write to standard output: \(POSIXIO.describe(errno))"))
                return
            }
        }
        // Pongs only while open: after our close, RFC 6455 section 5.5.1 allows no further frames.
        if case .open = phase {
            for ping in events.pings { queue(ClientFrameEncoder.frame(.pong, payload: ping, maskKey: random.next())) }
        }
        events.pings.removeAll()
        switch outcome.stop {
        case nil:
            break
        case .closeReceived:
            let (code, reason) = events.close ?? (nil, "")
            serverClosed(code: code, reason: reason)
        case .failure(let error):
            queue(
                ClientFrameEncoder.close(code: error.closeCode.rawValue, reason: error.reason, maskKey: random.next()))
            failure = ClientFailure("protocol error from the server: \(error.reason)")
            phase = .finishing(flushBy: Deadline(after: Self.farewellLimit))
            readsInput = false
        }
    }

    private func serverClosed(code: UInt16?, reason: String) {
        var description = "connection closed by server"
        if let code { description += ": \(code)" + (reason.isEmpty ? "" : " \(reason)") }
        if case .closing = phase {
            // The answer to our close: a normal code means every publish before it was handled.
            end(code == nil || code == CloseCode.normal.rawValue ? nil : ClientFailure(description))
            return
        }
        // The server ended the conversation: echo its code (section 5.5.1), then report why it ended.
        queue(ClientFrameEncoder.close(code: code, reason: "", maskKey: random.next()))
        failure = ClientFailure(code == nil ? description + " without a status code" : description)
        phase = .finishing(flushBy: Deadline(after: Self.farewellLimit))
        readsInput = false
    }

    private func queue(_ frame: [UInt8]) {
        if queued == 0 { stallDeadline = Deadline(after: Self.stallLimit) }
        outbound += frame
    }

    private func flushSocket() {
        while written < outbound.count {
            let status = outbound.withUnsafeBytes {
                socket.write(UnsafeRawBufferPointer(rebasing: $0[written...]))
            }
            switch status {
            case .transferred(let count):
                written += count
                stallDeadline = Deadline(after: Self.stallLimit)
            case .wouldBlock:
                if written > 1 << 16 {
                    outbound.removeFirst(written)
                    written = 0
                }
                return
            case .endOfFile, .failed:
                if case .finishing = phase {
                    done = true
                } else if case .failed(let code) = status {
                    connectionLost(POSIXIO.describe(code))
                } else {
                    connectionLost("the socket accepted no more bytes")
                }
                return
            }
        }
        outbound.removeAll(keepingCapacity: true)
        written = 0
        if case .closing(nil) = phase { phase = .closing(answerBy: Deadline(after: Self.closeWait)) }
    }

    // MARK: Standard input and signals

    private func readInput() {
        let status = chunk.withUnsafeMutableBytes { POSIXIO.read(0, into: $0) }
        switch status {
        case .transferred(let count):
            chunk.withUnsafeBytes { bytes in
                lines.append(UnsafeRawBufferPointer(rebasing: bytes[..<count])) { publish($0) }
            }
        case .wouldBlock:
            break
        case .endOfFile, .failed(EBADF):
            startClosing()
        case .failed(let code):
            end(ClientFailure("cannot read standard input: \(POSIXIO.describe(code))"))
        }
    }

    private func publish(_ line: String) {
        queue(
            ClientFrameEncoder.frame(
                .text, payload: PublishEncoder.json(channel: channel, data: line), maskKey: random.next()))
    }

    /// End of input: the unterminated last line still counts, then close 1000 goes out behind every publish.
    private func startClosing() {
        if let last = lines.finish() { publish(last) }
        queue(ClientFrameEncoder.close(code: CloseCode.normal.rawValue, maskKey: random.next()))
        readsInput = false
        phase = .closing(answerBy: nil)
    }

    private func handleSignal() {
        guard let signals, signals.drain() > 0 else { return }
        if case .open = phase {
            startClosing()
        } else {
            // A second Ctrl-C: the user does not want to wait for the close handshake.
            end(ClientFailure("interrupted", status: 130))
        }
    }
}
