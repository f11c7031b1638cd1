/// A handshake message after the handshake, arriving over one or more records (RFC 8446 section 5.1 lets a peer
/// split a message anywhere). Only what the record layer acts on is kept: the type, the length and the first
/// byte of the body (all of a KeyUpdate's; a TLS 1.2 ClientHello is skipped, whatever its length).
struct HandshakeAssembly {
    static let clientHello: UInt8 = 1
    static let keyUpdate: UInt8 = 24

    enum Step: Equatable {
        /// More bytes of the current message are needed.
        case incomplete
        /// The 4-byte header is complete; a message of length 0 is complete too (and already forgotten).
        case header(type: UInt8, length: Int)
        /// The message's last byte was taken.
        case message(type: UInt8, firstByte: UInt8?, length: Int)
    }

    private var headerBytes = 0
    private var type: UInt8 = 0
    private var length = 0
    private var remaining = 0
    private var firstByte: UInt8?

    /// Part of a message has arrived and the rest has not.
    var inProgress: Bool { headerBytes > 0 }

    /// Takes bytes of `body` from `index` on, up to the end of the current header or message.
    mutating func take(_ body: UnsafeRawBufferPointer, at index: inout Int) -> Step {
        if headerBytes < 4 {
            let byte = body[index]
            index += 1
            if headerBytes == 0 {
                type = byte
                length = 0
            } else {
                length = length << 8 | Int(byte)
            }
            headerBytes += 1
            guard headerBytes == 4 else { return .incomplete }
            remaining = length
            firstByte = nil
            if length == 0 { headerBytes = 0 }
            return .header(type: type, length: length)
        }
        let taken = min(remaining, body.count - index)
        if firstByte == nil && taken > 0 { firstByte = body[index] }
        index += taken
        remaining -= taken
        guard remaining == 0 else { return .incomplete }
        headerBytes = 0
        return .message(type: type, firstByte: firstByte, length: length)
    }
}
