/// One publish as it travels to subscribers: the plain frame, and the same message compressed once per
/// deflate window size that some subscriber uses (RFC 7692 with no server context takeover, so one
/// compressed frame serves every subscriber with that window).
struct Delivery: @unchecked Sendable {
    let plain: SharedFrame
    /// Indexed by window bits; empty when no subscriber compresses or the message is short.
    let compressed: [SharedFrame?]

    init(plain: SharedFrame, compressed: [SharedFrame?] = []) {
        self.plain = plain
        self.compressed = compressed
    }

    /// The frame for a connection compressing with `windowBits` (0: none). A window size nobody had when
    /// this was published gets the plain frame, which RFC 7692 always allows.
    @inline(__always)
    func frame(forWindowBits windowBits: UInt8) -> SharedFrame {
        if windowBits == 0 || Int(windowBits) >= compressed.count { return plain }
        return compressed[Int(windowBits)] ?? plain
    }
}
