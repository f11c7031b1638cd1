/// Decodes client frames from a byte buffer without copying: validates the header as soon as its bytes
/// are there (so a bad frame fails before its payload arrives), and unmasks a complete payload in place.
/// Never throws and never reads past the buffer; short input is `.incomplete`.
public struct FrameParser: Sendable {
    public enum Result: Equatable {
        /// More bytes are needed; `frameLength` is the whole frame's size once the header is known.
        case incomplete(frameLength: Int?)
        /// A whole frame: its payload (already unmasked) is `buffer[header.headerLength..<header.frameLength]`.
        case frame(FrameHeader)
        case failure(ProtocolError)
    }

    /// What `header(_:)` finds at the start of a buffer.
    public enum HeaderResult: Equatable {
        /// The header itself is not all here yet.
        case incomplete
        case header(FrameHeader)
        case failure(ProtocolError)
    }

    /// The largest payload accepted in one frame; a larger declared length fails with `.messageTooBig`.
    public var maxPayloadLength: Int
    /// The largest payload a continuation frame may announce: what is left of the message size once the
    /// fragments so far are counted (the reader sets it), so that a message too large fails at the header that
    /// makes it so, not once that frame's payload has arrived.
    public var maxContinuationLength: Int
    /// RSV bits an extension has given a meaning to; any other set bit is a protocol error.
    public var allowedRSV: UInt8 = 0
    /// Clients must mask (section 5.1); a client-side parser would clear this.
    public var requireMask = true

    public init(maxPayloadLength: Int) {
        self.maxPayloadLength = maxPayloadLength
        maxContinuationLength = maxPayloadLength
    }

    public func parse(_ buffer: UnsafeMutableRawBufferPointer) -> Result {
        let header: FrameHeader
        switch self.header(UnsafeRawBufferPointer(buffer)) {
        case .incomplete: return .incomplete(frameLength: nil)
        case .failure(let error): return .failure(error)
        case .header(let found): header = found
        }
        guard buffer.count >= header.frameLength, let base = buffer.baseAddress else {
            return .incomplete(frameLength: header.frameLength)
        }
        if let key = header.maskKey {
            Self.applyMask(key, to: base + header.headerLength, count: header.payloadLength)
        }
        return .frame(header)
    }

    /// Decodes and checks the header at the start of `buffer`, whether or not its payload is all here.
    public func header(_ buffer: UnsafeRawBufferPointer) -> HeaderResult {
        let available = buffer.count
        guard available >= 2, let base = buffer.baseAddress else { return .incomplete }
        let first = base.load(as: UInt8.self)
        let second = base.load(fromByteOffset: 1, as: UInt8.self)
        let fin = first & 0x80 != 0
        let rsv = first & 0x70
        guard let opcode = Opcode(rawValue: first & 0x0F) else {
            return .failure(.protocolViolation("reserved opcode"))
        }
        if rsv & ~allowedRSV != 0 {
            return .failure(.protocolViolation("reserved bits set"))
        }
        let masked = second & 0x80 != 0
        if masked != requireMask {
            return .failure(.protocolViolation(requireMask ? "client frame not masked" : "server frame masked"))
        }
        let shortLength = Int(second & 0x7F)
        if opcode.isControl {
            if !fin { return .failure(.protocolViolation("fragmented control frame")) }
            if shortLength > 125 { return .failure(.protocolViolation("control frame too long")) }
        }
        let limit = opcode == .continuation ? min(maxContinuationLength, maxPayloadLength) : maxPayloadLength
        var headerLength = 2
        var payloadLength = shortLength
        if shortLength == 126 {
            guard available >= 4 else { return .incomplete }
            payloadLength = Int(UInt16(bigEndian: base.loadUnaligned(fromByteOffset: 2, as: UInt16.self)))
            headerLength = 4
        } else if shortLength == 127 {
            guard available >= 10 else { return .incomplete }
            let wide = UInt64(bigEndian: base.loadUnaligned(fromByteOffset: 2, as: UInt64.self))
            if wide & (1 << 63) != 0 { return .failure(.protocolViolation("payload length top bit set")) }
            if wide > UInt64(limit) { return .failure(.messageTooBig) }
            payloadLength = Int(wide)
            headerLength = 10
        }
        if payloadLength > limit { return .failure(.messageTooBig) }
        var maskKey: UInt32?
        if masked {
            guard available >= headerLength + 4 else { return .incomplete }
            maskKey = base.loadUnaligned(fromByteOffset: headerLength, as: UInt32.self)
            headerLength += 4
        }
        return .header(
            FrameHeader(
                fin: fin, rsv: rsv, opcode: opcode, maskKey: maskKey, payloadLength: payloadLength,
                headerLength: headerLength))
    }

    /// XORs `count` bytes with the 4-byte key, eight bytes at a time (section 5.3).
    @inline(__always)
    public static func applyMask(_ key: UInt32, to start: UnsafeMutableRawPointer, count: Int) {
        let wide = UInt64(key) | UInt64(key) << 32
        var index = 0
        while index + 8 <= count {
            let word = start.loadUnaligned(fromByteOffset: index, as: UInt64.self)
            start.storeBytes(of: word ^ wide, toByteOffset: index, as: UInt64.self)
            index += 8
        }
        // The key's phase is unchanged after a multiple of eight bytes, so the tail starts at key byte 0.
        var phase = 0
        while index < count {
            let keyByte = UInt8(truncatingIfNeeded: key >> (8 * UInt32(phase)))
            let byte = start.load(fromByteOffset: index, as: UInt8.self)
            start.storeBytes(of: byte ^ keyByte, toByteOffset: index, as: UInt8.self)
            index += 1
            phase = (phase + 1) & 3
        }
    }
}
