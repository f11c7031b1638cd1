/// Appends `philote bench`'s publish frames to a send buffer: a masked text frame (RFC 6455 section 5.3)
/// holding `{"channel":"<name>","data":"<stamp><filler>"}`, the data padded with `x` to the requested size.
/// Written in place, without a temporary array per message: a publisher at `--rate max` writes hundreds of
/// thousands a second. With permessage-deflate agreed, each message is compressed on its own (no context
/// takeover), as the harness (wsload) does by default with `--deflate`.
public struct BenchFrameWriter: Sendable {
    /// `{"channel":"<escaped name>","data":"`, made once per publisher.
    private let prefix: [UInt8]
    /// Characters of the data string (at least the stamp's).
    public let dataSize: Int
    /// xorshift state for the masking keys: a load tool needs keys that vary, not a cryptographic source.
    private var random: UInt64
    /// `appendCompressed`: the text before compression, reused.
    private var scratch: [UInt8] = []

    public init(channel: String, dataSize: Int, seed: UInt64) {
        var prefix = Array(#"{"channel":""#.utf8)
        var name = channel
        name.withUTF8 { JSONStringEncoder.append(UnsafeRawBufferPointer($0), to: &prefix) }
        prefix += Array(#"","data":""#.utf8)
        self.prefix = prefix
        self.dataSize = dataSize
        random = seed | 1
    }

    /// The JSON text's length for a stamp (the data string is never shorter than the stamp).
    func payloadLength(stampLength: Int) -> Int {
        prefix.count + Swift.max(dataSize, stampLength) + 2
    }

    public mutating func append(_ stamp: BenchStamp, to out: inout [UInt8]) {
        let length = payloadLength(stampLength: Self.stampLength(stamp))
        out.reserveCapacity(out.count + 14 + length)
        let key = appendHeader(0x81, length: length, to: &out)  // FIN, text
        let payloadStart = out.count
        appendPayload(stamp, to: &out)
        out.withUnsafeMutableBytes { buffer in
            FrameParser.applyMask(key, to: buffer.baseAddress! + payloadStart, count: length)
        }
    }

    /// The same message compressed for permessage-deflate (RFC 7692: RSV1 set on the frame, the payload one
    /// raw deflate stream without its final `00 00 ff ff`), as the harness sends it when the server agrees.
    public mutating func appendCompressed(_ stamp: BenchStamp, with deflater: Deflater, to out: inout [UInt8]) {
        scratch.removeAll(keepingCapacity: true)
        appendPayload(stamp, to: &scratch)
        let compressed = scratch.withUnsafeBytes { deflater.compress($0) }
        let key = appendHeader(0xC1, length: compressed.count, to: &out)  // FIN, RSV1, text
        let payloadStart = out.count
        out.append(contentsOf: compressed)
        out.withUnsafeMutableBytes { buffer in
            FrameParser.applyMask(key, to: buffer.baseAddress! + payloadStart, count: compressed.count)
        }
    }

    /// A masked frame's header for a payload of `length` bytes; its masking key.
    private mutating func appendHeader(_ first: UInt8, length: Int, to out: inout [UInt8]) -> UInt32 {
        out.append(first)
        if length < 126 {
            out.append(0x80 | UInt8(length))
        } else if length < 65536 {
            out.append(0x80 | 126)
            out.append(UInt8(length >> 8))
            out.append(UInt8(length & 0xFF))
        } else {
            out.append(0x80 | 127)
            for shift in stride(from: 56, through: 0, by: -8) { out.append(UInt8((length >> shift) & 0xFF)) }
        }
        random ^= random << 13
        random ^= random >> 7
        random ^= random << 17
        let key = UInt32(truncatingIfNeeded: random)
        withUnsafeBytes(of: key.littleEndian) { out.append(contentsOf: $0) }
        return key
    }

    private static func stampLength(_ stamp: BenchStamp) -> Int {
        1 + digitCount(stamp.sentAt) + 1 + 2 + digitCount(stamp.sequence) + 2 + digitCount(stamp.publisher) + 1
    }

    /// The JSON text, unmasked.
    private func appendPayload(_ stamp: BenchStamp, to out: inout [UInt8]) {
        var digits: (UInt64, UInt64, UInt64) = (stamp.sentAt, stamp.sequence, stamp.publisher)
        let stampLength = Self.stampLength(stamp)
        out.append(contentsOf: prefix)
        out.append(0x54)  // T
        Self.appendDigits(&digits.0, to: &out)
        out.append(stamp.measured ? 0x52 : 0x57)
        out.append(0x2D)
        out.append(0x53)
        Self.appendDigits(&digits.1, to: &out)
        out.append(0x2D)
        out.append(0x50)
        Self.appendDigits(&digits.2, to: &out)
        out.append(0x2D)
        if dataSize > stampLength {
            out.append(contentsOf: repeatElement(0x78, count: dataSize - stampLength))  // x
        }
        out.append(0x22)
        out.append(0x7D)
    }

    static func digitCount(_ value: UInt64) -> Int {
        var count = 1
        var rest = value
        while rest >= 10 {
            rest /= 10
            count += 1
        }
        return count
    }

    private static func appendDigits(_ value: inout UInt64, to out: inout [UInt8]) {
        let count = digitCount(value)
        let end = out.count + count
        out.append(contentsOf: repeatElement(0x30, count: count))
        var rest = value
        var index = end - 1
        repeat {
            out[index] = 0x30 + UInt8(rest % 10)
            rest /= 10
            index -= 1
        } while rest > 0
    }
}
