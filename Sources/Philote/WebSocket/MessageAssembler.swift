/// Joins data frames into messages (RFC 6455 section 5.4): enforces continuation rules, the message size
/// cap across fragments, and incremental UTF-8 validation of text so that bad bytes fail at once.
/// An unfragmented message is never copied: the caller delivers the frame payload it already holds.
public struct MessageAssembler: Sendable {
    public enum Result: Equatable {
        /// A fragment was stored; the message is not complete.
        case fragmentStored
        /// The frame was a whole message by itself: deliver its payload in place.
        case messageInPlace(Opcode)
        /// The last fragment arrived: deliver `takeMessage()`.
        case messageAssembled(Opcode)
        case failure(ProtocolError)
    }

    public var maxMessageSize: Int
    private var fragmentedOpcode: Opcode?
    private var buffer: [UInt8] = []
    private var utf8 = UTF8Validator()

    public init(maxMessageSize: Int) {
        self.maxMessageSize = maxMessageSize
    }

    /// True while a fragmented message is partly received.
    public var isAssembling: Bool { fragmentedOpcode != nil }

    /// How many more payload bytes the message being assembled may take.
    public var remainingCapacity: Int { maxMessageSize - buffer.count }

    /// While an uncompressed text message is being assembled: the UTF-8 state its next fragment continues from.
    public var continuationTextValidator: UTF8Validator? {
        fragmentedOpcode == .text && !isCompressed ? utf8 : nil
    }

    /// Whether the message being assembled, or the one just completed, had RSV1 on its first frame
    /// (permessage-deflate): its payload is compressed, and its UTF-8 is checked after inflating.
    public private(set) var isCompressed = false

    /// Takes a data frame (text, binary or continuation) whose payload is already unmasked.
    public mutating func accept(_ header: FrameHeader, payload: UnsafeRawBufferPointer) -> Result {
        switch header.opcode {
        case .text, .binary:
            if fragmentedOpcode != nil {
                return .failure(.protocolViolation("new message before the previous one finished"))
            }
            isCompressed = header.rsv & FrameHeader.rsv1 != 0
            let checksText = header.opcode == .text && !isCompressed
            if checksText {
                utf8 = UTF8Validator()
                guard utf8.validate(payload) else { return .failure(.invalidUTF8) }
            }
            if header.fin {
                if checksText && !utf8.isComplete { return .failure(.invalidUTF8) }
                return .messageInPlace(header.opcode)
            }
            fragmentedOpcode = header.opcode
            buffer.append(contentsOf: payload)
            return .fragmentStored
        case .continuation:
            guard let opcode = fragmentedOpcode else {
                return .failure(.protocolViolation("continuation frame without a message"))
            }
            // RFC 7692 section 6.1: RSV1 marks the first frame of a compressed message only.
            if header.rsv != 0 { return .failure(.protocolViolation("reserved bits set on a continuation frame")) }
            if buffer.count + payload.count > maxMessageSize { return .failure(.messageTooBig) }
            if opcode == .text && !isCompressed {
                guard utf8.validate(payload) else { return .failure(.invalidUTF8) }
                if header.fin && !utf8.isComplete { return .failure(.invalidUTF8) }
            }
            buffer.append(contentsOf: payload)
            return header.fin ? .messageAssembled(opcode) : .fragmentStored
        case .close, .ping, .pong:
            preconditionFailure("control frames do not go through the assembler")
        }
    }

    /// The assembled message; the assembler is ready for the next one and keeps no buffer.
    public mutating func takeMessage() -> [UInt8] {
        let message = buffer
        buffer = []
        fragmentedOpcode = nil
        return message
    }
}
