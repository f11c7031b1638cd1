/// The inbound half of a server-side WebSocket: frames in, events out, with every RFC 6455 rule of
/// sections 5 to 7 checked. Pure code over bytes; the connection owns the socket and the buffers.
public struct WebSocketReader {
    public enum Stop: Equatable {
        /// A close frame was received and reported; the reader reads nothing more.
        case closeReceived
        case failure(ProtocolError)
    }

    public struct Outcome: Equatable {
        /// Bytes fully handled; the rest (an incomplete frame) must be offered again with more data.
        public var consumed: Int
        /// When the next frame is partly here and its header is known: its total length.
        public var pendingFrameLength: Int?
        public var stop: Stop?
    }

    public var parser: FrameParser
    public var assembler: MessageAssembler
    /// Set when permessage-deflate was negotiated: whether the peer keeps its compression context
    /// between messages (then so must the inflater).
    public private(set) var inflateContextTakeover: Bool?
    /// Created on the first compressed message; kept only while the peer's context must be kept.
    private var inflater: Inflater?
    /// Compressed messages received so far (for the connection's closing log line).
    public private(set) var compressedMessages: UInt32 = 0
    /// The text of a frame whose payload is still arriving, checked as it comes so that invalid UTF-8 fails at
    /// the first bad byte rather than once the whole frame is here: the payload bytes checked so far (the frame
    /// is offered again from its start with more data) and the state after them.
    private var partialTextChecked = 0
    private var partialText = UTF8Validator()

    public init(maxMessageSize: Int) {
        parser = FrameParser(maxPayloadLength: maxMessageSize)
        assembler = MessageAssembler(maxMessageSize: maxMessageSize)
    }

    /// Accepts RSV1 (compressed messages) from now on (RFC 7692).
    public mutating func enableDeflate(contextTakeover: Bool) {
        inflateContextTakeover = contextTakeover
        parser.allowedRSV = FrameHeader.rsv1
    }

    /// Decodes every complete frame in `buffer` (unmasking in place) and reports them to `sink`.
    public mutating func read<Sink: WebSocketEventSink>(
        _ buffer: UnsafeMutableRawBufferPointer, into sink: Sink
    ) -> Outcome {
        var offset = 0
        while true {
            let rest = UnsafeMutableRawBufferPointer(rebasing: buffer[offset...])
            parser.maxContinuationLength = assembler.remainingCapacity
            switch parser.parse(rest) {
            case .incomplete(let frameLength):
                if frameLength != nil, let error = checkPartialText(UnsafeRawBufferPointer(rest)) {
                    return Outcome(consumed: offset, pendingFrameLength: nil, stop: .failure(error))
                }
                return Outcome(consumed: offset, pendingFrameLength: frameLength, stop: nil)
            case .failure(let error):
                return Outcome(consumed: offset, pendingFrameLength: nil, stop: .failure(error))
            case .frame(let header):
                // The whole frame is here: the assembler checks all of its text.
                partialTextChecked = 0
                let payload = UnsafeRawBufferPointer(
                    rebasing: rest[header.headerLength..<header.frameLength])
                offset += header.frameLength
                if let stop = handle(header, payload, sink) {
                    return Outcome(consumed: offset, pendingFrameLength: nil, stop: stop)
                }
            }
        }
    }

    private mutating func handle<Sink: WebSocketEventSink>(
        _ header: FrameHeader, _ payload: UnsafeRawBufferPointer, _ sink: Sink
    ) -> Stop? {
        if header.opcode.isControl && header.rsv != 0 {
            return .failure(.protocolViolation("reserved bits set on a control frame"))
        }
        switch header.opcode {
        case .ping:
            sink.receivedPing(payload)
        case .pong:
            sink.receivedPong(payload)
        case .close:
            switch Self.validateClose(payload) {
            case .success(let code):
                sink.receivedClose(
                    code: code,
                    reason: payload.count > 2
                        ? UnsafeRawBufferPointer(rebasing: payload[2...]) : UnsafeRawBufferPointer(start: nil, count: 0)
                )
                return .closeReceived
            case .failure(let error):
                return .failure(error)
            }
        case .text, .binary, .continuation:
            switch assembler.accept(header, payload: payload) {
            case .fragmentStored:
                break
            case .messageInPlace(let opcode):
                if assembler.isCompressed { return deliverCompressed(opcode, payload, sink) }
                sink.receivedMessage(opcode, payload)
            case .messageAssembled(let opcode):
                let message = assembler.takeMessage()
                if assembler.isCompressed {
                    return message.withUnsafeBytes { deliverCompressed(opcode, $0, sink) }
                }
                message.withUnsafeBytes { sink.receivedMessage(opcode, $0) }
            case .failure(let error):
                return .failure(error)
            }
        }
        return nil
    }

    /// Checks the payload bytes of an incomplete text frame (or a continuation of an uncompressed text message) that
    /// arrived since the last look; the error once they cannot be valid UTF-8. The bytes stay masked in `frame`
    /// (the parser unmasks the whole payload in place once it is here): each piece is unmasked into a scratch buffer.
    private mutating func checkPartialText(_ frame: UnsafeRawBufferPointer) -> ProtocolError? {
        guard case .header(let header) = parser.header(frame) else { return nil }
        let available = min(frame.count, header.frameLength) - header.headerLength
        guard available > partialTextChecked else { return nil }
        if partialTextChecked == 0 {
            switch header.opcode {
            case .text where header.rsv & FrameHeader.rsv1 == 0 && !assembler.isAssembling:
                partialText = UTF8Validator()
            case .continuation:
                guard let state = assembler.continuationTextValidator else { return nil }
                partialText = state
            default:
                return nil
            }
        }
        let valid = withUnsafeTemporaryAllocation(byteCount: 512, alignment: 8) { scratch -> Bool in
            var position = partialTextChecked
            while position < available {
                let count = min(scratch.count, available - position)
                let piece = UnsafeRawBufferPointer(rebasing: frame[(header.headerLength + position)...].prefix(count))
                scratch.copyMemory(from: piece)
                if let key = header.maskKey {
                    // The key's phase at `position`: its bytes rotated so that applyMask starts there.
                    let shift = UInt32(8 * (position & 3))
                    let rotated = shift == 0 ? key : key >> shift | key << (32 - shift)
                    FrameParser.applyMask(rotated, to: scratch.baseAddress!, count: count)
                }
                guard partialText.validate(UnsafeRawBufferPointer(rebasing: scratch[..<count])) else { return false }
                position += count
            }
            return true
        }
        partialTextChecked = available
        return valid ? nil : .invalidUTF8
    }

    /// Inflates a whole compressed message (capped at the message size limit, so a compression bomb stops
    /// there), checks text as UTF-8, and delivers it.
    private mutating func deliverCompressed<Sink: WebSocketEventSink>(
        _ opcode: Opcode, _ payload: UnsafeRawBufferPointer, _ sink: Sink
    ) -> Stop? {
        let keepsContext = inflateContextTakeover ?? false
        let inflater = self.inflater ?? Inflater(contextTakeover: keepsContext)
        // Without context takeover nothing is kept between messages: a quiet connection holds no zlib state.
        self.inflater = keepsContext ? inflater : nil
        switch inflater.decompress(payload, limit: assembler.maxMessageSize) {
        case .failure(.tooBig):
            return .failure(.messageTooBig)
        case .failure(.corrupt):
            return .failure(.invalidCompressedData)
        case .success(let message):
            if opcode == .text {
                var utf8 = UTF8Validator()
                guard message.withUnsafeBytes({ utf8.validate($0) }), utf8.isComplete else {
                    return .failure(.invalidUTF8)
                }
            }
            compressedMessages &+= 1
            message.withUnsafeBytes { sink.receivedMessage(opcode, $0) }
            return nil
        }
    }

    /// A close payload is empty, or a code a peer may send followed by a UTF-8 reason (section 5.5.1).
    static func validateClose(_ payload: UnsafeRawBufferPointer) -> Result<UInt16?, ProtocolError> {
        if payload.isEmpty { return .success(nil) }
        if payload.count == 1 { return .failure(.protocolViolation("close payload of one byte")) }
        let code = UInt16(payload[0]) << 8 | UInt16(payload[1])
        guard CloseCode.isValidOnWire(code) else { return .failure(.protocolViolation("invalid close code")) }
        var utf8 = UTF8Validator()
        let reason = UnsafeRawBufferPointer(rebasing: payload[2...])
        guard utf8.validate(reason), utf8.isComplete else { return .failure(.invalidUTF8) }
        return .success(code)
    }
}
