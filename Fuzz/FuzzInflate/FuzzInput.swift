/// Reads a fuzz input front to back: header bytes, then length-prefixed pieces. Reading past the end
/// gives zeros and empty pieces, so every input is a valid script.
struct FuzzInput {
    private let bytes: UnsafeBufferPointer<UInt8>
    private var index = 0

    init(_ bytes: UnsafeBufferPointer<UInt8>) {
        self.bytes = bytes
    }

    var isAtEnd: Bool { index >= bytes.count }

    mutating func byte() -> UInt8 {
        guard index < bytes.count else { return 0 }
        defer { index += 1 }
        return bytes[index]
    }

    /// A two-byte big-endian length, then that many bytes (fewer where the input ends first).
    mutating func piece() -> [UInt8] {
        let length = Int(byte()) << 8 | Int(byte())
        let end = min(index + length, bytes.count)
        defer { index = end }
        return Array(bytes[index..<end])
    }
}
