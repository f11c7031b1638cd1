/// The WebSocket side of an open connection: frames in, with the bytes of an incomplete frame held between
/// reads, and the liveness clock (an idle peer is pinged, and closed if it does not answer in time). Pure
/// logic over bytes and times; the connection owns the socket, the output and the close handshake.
struct WebSocketSession {
    private var reader: WebSocketReader
    /// Bytes of an incomplete frame, held between reads; empty (no storage) otherwise.
    private var pending: [UInt8] = []
    /// When the peer last sent anything (ms, monotonic).
    private var lastHeard: UInt64
    private var pingSentAt: UInt64 = 0
    private var awaitingPong = false

    /// What the liveness clock asks for now.
    enum Liveness: Equatable {
        case quiet
        /// Idle for the ping interval: send a ping (the pong deadline starts now).
        case ping
        /// A ping went unanswered for the pong timeout.
        case unresponsive
    }

    init(maxMessageSize: Int, now: UInt64) {
        reader = WebSocketReader(maxMessageSize: maxMessageSize)
        lastHeard = now
    }

    /// Compressed messages received (for the connection's closing log line).
    var compressedMessages: UInt32 { reader.compressedMessages }

    /// permessage-deflate was negotiated (RFC 7692).
    mutating func enableDeflate(contextTakeover: Bool) {
        reader.enableDeflate(contextTakeover: contextTakeover)
    }

    /// The peer sent something: it is alive, whatever it was.
    @inline(__always)
    mutating func heard(at now: UInt64) {
        lastHeard = now
        awaitingPong = false
    }

    /// Decodes the frames in `input` (unmasked in place) into `sink`, keeping an incomplete one for the next
    /// read. Returns the protocol error that ends the connection, if any. The sink must not touch this session
    /// while it is called (the session is being read).
    mutating func read<Sink: WebSocketEventSink>(_ input: UnsafeMutableRawBufferPointer, into sink: Sink)
        -> ProtocolError?
    {
        let outcome: WebSocketReader.Outcome
        if pending.isEmpty {
            outcome = reader.read(input, into: sink)
            let rest = input.count - outcome.consumed
            if rest > 0 && outcome.stop == nil {
                pending.reserveCapacity(max(outcome.pendingFrameLength ?? 0, rest))
                pending.append(contentsOf: UnsafeRawBufferPointer(rebasing: input[outcome.consumed...]))
            }
        } else {
            pending.append(contentsOf: UnsafeRawBufferPointer(input))
            // Moved out while it is read, so that keeping the rest never copies it.
            var bytes = pending
            pending = []
            outcome = bytes.withUnsafeMutableBytes { reader.read($0, into: sink) }
            if outcome.stop == nil && outcome.consumed < bytes.count {
                bytes.removeSubrange(0..<outcome.consumed)
                if let frameLength = outcome.pendingFrameLength { bytes.reserveCapacity(frameLength) }
                pending = bytes
            }
        }
        switch outcome.stop {
        case nil: return nil
        case .closeReceived:
            pending = []
            return nil
        case .failure(let error):
            pending = []
            return error
        }
    }

    /// When the liveness clock next needs a look (nil: never, pings are off).
    func livenessDeadline(pingInterval: UInt64, pongTimeout: UInt64) -> UInt64? {
        guard pingInterval > 0 else { return nil }
        return awaitingPong ? pingSentAt + pongTimeout : lastHeard + pingInterval
    }

    /// Advances the liveness clock to `now`; `.ping` means the caller sends one now.
    mutating func checkLiveness(now: UInt64, pingInterval: UInt64, pongTimeout: UInt64) -> Liveness {
        guard pingInterval > 0 else { return .quiet }
        if awaitingPong {
            return now >= pingSentAt + pongTimeout ? .unresponsive : .quiet
        }
        guard now >= lastHeard + pingInterval else { return .quiet }
        awaitingPong = true
        pingSentAt = now
        return .ping
    }
}
