import Philote

/// Inflates the compressed deliveries of one loop's subscribers (the server never takes over context: each message
/// is a stream of its own) into one buffer kept for the loop's life, as wsload does: no allocation per message.
/// `Inflater.decompress` returns a fresh array per message, which on the tool's one core cost about a tenth of its
/// deflate rate.
final class BenchInflater {
    private let inflater = Inflater(contextTakeover: false)
    private let output: UnsafeMutableRawBufferPointer

    init(capacity: Int = 1 << 20) {
        output = .allocate(byteCount: capacity, alignment: 16)
    }

    deinit { output.deallocate() }

    /// The message, valid until the next call; nil when it is corrupt or does not fit the buffer.
    func inflate(_ input: UnsafeRawBufferPointer) -> UnsafeRawBufferPointer? {
        try? inflater.inflate(input, into: output).get()
    }
}
