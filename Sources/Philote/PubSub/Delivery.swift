/// One publish as it travels to subscribers: the plain frame, and the same message compressed once per
/// deflate window size that some subscriber uses (RFC 7692 with no server context takeover, so one
/// compressed frame serves every subscriber with that window). On a channel with history it also carries the
/// positioned frame (the message with its epoch and offset, for readers that asked for positions) and its
/// compressed forms.
struct Delivery: @unchecked Sendable {
    let plain: SharedFrame
    /// Indexed by window bits; empty when no subscriber compresses or the message is short.
    let compressed: [SharedFrame?]
    /// With history: the frame readers of positions get (what history keeps), and its compressed forms by window
    /// bits (usually none: only when such readers compress).
    let positioned: SharedFrame?
    let positionedCompressed: [SharedFrame?]

    /// The variant a reader needs: its deflate window bits (0: none), plus 16 when it gets positions.
    @inline(__always)
    static func variant(windowBits: UInt8, positioned: Bool) -> UInt8 {
        windowBits | (positioned ? 16 : 0)
    }

    init(
        plain: SharedFrame, compressed: [SharedFrame?] = [], positioned: SharedFrame? = nil,
        positionedCompressed: [SharedFrame?] = []
    ) {
        self.plain = plain
        self.compressed = compressed
        self.positioned = positioned
        self.positionedCompressed = positionedCompressed
    }

    /// The bytes of every frame it holds, the plain one included.
    var length: Int {
        var bytes = plain.length + (positioned?.length ?? 0)
        for case let frame? in compressed { bytes += frame.length }
        for case let frame? in positionedCompressed { bytes += frame.length }
        return bytes
    }

    /// Keeps every frame of this publish alive until `loop`'s flush pass ends, so that the subscribers on
    /// that loop can queue them without a reference count each (`Subscriber.send(heldFrame:)`).
    func keepAlive(on loop: EventLoop) {
        loop.keepAlive(plain)
        for case let frame? in compressed { loop.keepAlive(frame) }
        guard let positioned else { return }
        loop.keepAlive(positioned)
        for case let frame? in positionedCompressed { loop.keepAlive(frame) }
    }

    /// The frame for a reader of `variant`. A variant nobody needed when this was published falls back: a
    /// compressed one to the uncompressed form (which RFC 7692 always allows), a positioned one to the plain frame
    /// on a channel without history. Unmanaged, so that taking it costs no reference count: it is valid while this
    /// delivery is.
    @inline(__always)
    func frame(forVariant variant: UInt8) -> Unmanaged<SharedFrame> {
        if variant == 0 { return Unmanaged.passUnretained(plain) }
        if variant < 16 {
            guard Int(variant) < compressed.count, let frame = compressed[Int(variant)] else {
                return Unmanaged.passUnretained(plain)
            }
            return Unmanaged.passUnretained(frame)
        }
        guard let positioned else { return Unmanaged.passUnretained(plain) }
        let bits = Int(variant - 16)
        if bits > 0 && bits < positionedCompressed.count, let frame = positionedCompressed[bits] {
            return Unmanaged.passUnretained(frame)
        }
        return Unmanaged.passUnretained(positioned)
    }
}
