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

    /// Keeps every frame of this publish alive until `loop`'s flush pass ends, so that the subscribers on
    /// that loop can queue them without a reference count each (`Subscriber.send(heldFrame:)`).
    func keepAlive(on loop: EventLoop) {
        loop.keepAlive(plain)
        for case let frame? in compressed { loop.keepAlive(frame) }
    }

    /// The frame for a connection compressing with `windowBits` (0: none). A window size nobody had when
    /// this was published gets the plain frame, which RFC 7692 always allows. Unmanaged, so that taking it
    /// costs no reference count: it is valid while this delivery is.
    @inline(__always)
    func frame(forWindowBits windowBits: UInt8) -> Unmanaged<SharedFrame> {
        if windowBits == 0 || Int(windowBits) >= compressed.count { return Unmanaged.passUnretained(plain) }
        return Unmanaged.passUnretained(compressed[Int(windowBits)] ?? plain)
    }
}
