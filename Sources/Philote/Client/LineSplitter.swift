/// Cuts a byte stream (standard input) into lines the way Go's `bufio.ScanLines` does, which the original
/// `jane` client used: a line ends at `\n`, one trailing `\r` is dropped, and a last line without `\n` still
/// counts. Bytes that are not UTF-8 become U+FFFD, because a text frame must carry valid UTF-8.
public struct LineSplitter: Sendable {
    private var partial: [UInt8] = []

    public init() {}

    /// Feeds `bytes`; calls `line` for every line they complete, in order.
    public mutating func append(_ bytes: UnsafeRawBufferPointer, _ line: (String) -> Void) {
        var start = 0
        for (index, byte) in bytes.enumerated() where byte == 0x0A {
            partial.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[start..<index]))
            line(Self.text(partial))
            partial.removeAll(keepingCapacity: true)
            start = index + 1
        }
        partial.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[start...]))
    }

    /// At end of input: the last line if it had no `\n` (nil when the input ended with one).
    public mutating func finish() -> String? {
        guard !partial.isEmpty else { return nil }
        defer { partial = [] }
        return Self.text(partial)
    }

    private static func text(_ bytes: [UInt8]) -> String {
        String(decoding: bytes.last == 0x0D ? bytes.dropLast() : bytes[...], as: UTF8.self)
    }
}
