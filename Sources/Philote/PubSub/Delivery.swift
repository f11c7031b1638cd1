/// One publish as it travels to subscribers: the plain frame, and the same message compressed once per
/// deflate window size that some subscriber uses (RFC 7692 with no server context takeover, so one
/// compressed frame serves every subscriber with that window). On a channel with history it also carries the
/// positioned frame (the message with its epoch and offset, for readers that asked for positions) and its
/// compressed forms.
struct Delivery: @unchecked Sendable {
    let plain: SharedFrame
    /// Indexed by variant (see `variant(windowBits:positioned:)`); empty when there is only the plain frame.
    let variants: [SharedFrame?]

    /// The variant a reader needs: its deflate window bits (0: none), plus 16 when it gets positions.
    @inline(__always)
    static func variant(windowBits: UInt8, positioned: Bool) -> UInt8 {
        windowBits | (positioned ? 16 : 0)
    }

    static let positionedPlain = 16

    init(plain: SharedFrame, compressed: [SharedFrame?] = []) {
        self.plain = plain
        variants = compressed
    }

    /// A publish on a channel with history: `compressed` and `positionedCompressed` are indexed by window bits.
    init(plain: SharedFrame, compressed: [SharedFrame?], positioned: SharedFrame, positionedCompressed: [SharedFrame?]) {
        self.plain = plain
        var variants = [SharedFrame?](repeating: nil, count: 32)
        for (bits, frame) in compressed.enumerated() { variants[bits] = frame }
        variants[Self.positionedPlain] = positioned
        for (bits, frame) in positionedCompressed.enumerated() where bits > 0 { variants[16 + bits] = frame }
        self.variants = variants
    }

    /// The positioned frame (what history keeps); nil on a channel without history.
    var positioned: SharedFrame? { variants.count > Self.positionedPlain ? variants[Self.positionedPlain] : nil }

    /// Keeps every frame of this publish alive until `loop`'s flush pass ends, so that the subscribers on
    /// that loop can queue them without a reference count each (`Subscriber.send(heldFrame:)`).
    func keepAlive(on loop: EventLoop) {
        loop.keepAlive(plain)
        for case let frame? in variants { loop.keepAlive(frame) }
    }

    /// The frame for a reader of `variant`. A variant nobody needed when this was published falls back: a
    /// compressed one to the uncompressed form (which RFC 7692 always allows), a positioned one to the plain frame
    /// on a channel without history. Unmanaged, so that taking it costs no reference count: it is valid while this
    /// delivery is.
    @inline(__always)
    func frame(forVariant variant: UInt8) -> Unmanaged<SharedFrame> {
        if variant == 0 || Int(variant) >= variants.count { return Unmanaged.passUnretained(plain) }
        if let frame = variants[Int(variant)] { return Unmanaged.passUnretained(frame) }
        if variant > 16, let frame = variants[Self.positionedPlain] { return Unmanaged.passUnretained(frame) }
        return Unmanaged.passUnretained(plain)
    }
}
