import CSystem

/// Names one unbroken sequence of a channel's offsets: 12 lowercase hexadecimal characters, random, made when a
/// channel's record is made. A client's position in another epoch cannot be continued, whatever its offset.
public struct Epoch: Hashable, Sendable, CustomStringConvertible {
    public let text: String

    public init(_ text: String) {
        self.text = text
    }

    public static func random() -> Epoch {
        var bytes = [UInt8](repeating: 0, count: 6)
        let ok = bytes.withUnsafeMutableBufferPointer { CSystem_random_bytes($0.baseAddress!, 6) }
        precondition(ok == 1, "RAND_bytes failed")
        let hex = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        out.reserveCapacity(12)
        for byte in bytes { out += [hex[Int(byte >> 4)], hex[Int(byte & 15)]] }
        return Epoch(String(decoding: out, as: UTF8.self))
    }

    public var description: String { text }
}
