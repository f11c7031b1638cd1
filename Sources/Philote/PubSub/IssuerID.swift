import CSystem

/// A connection's random UUIDv4 (RFC 9562 section 5.4), the `issuer` the others see. Kept as 16 bytes
/// (not a 36-character string on the heap: idle connections should cost little) and spelled out, lowercase
/// with hyphens, only into an encoded message.
public struct IssuerID: Equatable, Sendable {
    private var high: UInt64
    private var low: UInt64

    public static func random() -> IssuerID {
        var id = IssuerID(high: 0, low: 0)
        let ok = withUnsafeMutableBytes(of: &id) {
            CSystem_random_bytes($0.baseAddress!.assumingMemoryBound(to: UInt8.self), 16)
        }
        precondition(ok == 1, "RAND_bytes failed")
        withUnsafeMutableBytes(of: &id) { bytes in
            bytes[6] = bytes[6] & 0x0F | 0x40  // version 4
            bytes[8] = bytes[8] & 0x3F | 0x80  // variant 10
        }
        return id
    }

    private static let hex: [UInt8] = Array("0123456789abcdef".utf8)

    /// Appends the 36-character form.
    public func append(to out: inout [UInt8]) {
        withUnsafeBytes(of: self) { bytes in
            for index in 0..<16 {
                if index == 4 || index == 6 || index == 8 || index == 10 { out.append(UInt8(ascii: "-")) }
                out.append(Self.hex[Int(bytes[index] >> 4)])
                out.append(Self.hex[Int(bytes[index] & 0xF)])
            }
        }
    }
}

// In an extension, so that the memberwise initialiser `random` uses stays.
extension IssuerID {
    /// The 16 bytes of an id as they lie in memory (the hub's sender mark carries them through Redis).
    init(bytes: UnsafeRawBufferPointer) {
        precondition(bytes.count == 16)
        self.init(high: 0, low: 0)
        withUnsafeMutableBytes(of: &self) { $0.copyMemory(from: bytes) }
    }
}
