import Synchronization

/// How many subscribers, on all loops, compress with each deflate window size: a publish is compressed
/// for the sizes in use only (usually just 15), and not at all when nobody compresses. (Atomic values
/// cannot live in an array, hence one property per size.)
final class CompressionUsage: Sendable {
    private let w9 = Atomic<Int>(0), w10 = Atomic<Int>(0), w11 = Atomic<Int>(0), w12 = Atomic<Int>(0)
    private let w13 = Atomic<Int>(0), w14 = Atomic<Int>(0), w15 = Atomic<Int>(0)

    func add(_ bits: UInt8, _ delta: Int) {
        switch bits {
        case 9: w9.wrappingAdd(delta, ordering: .relaxed)
        case 10: w10.wrappingAdd(delta, ordering: .relaxed)
        case 11: w11.wrappingAdd(delta, ordering: .relaxed)
        case 12: w12.wrappingAdd(delta, ordering: .relaxed)
        case 13: w13.wrappingAdd(delta, ordering: .relaxed)
        case 14: w14.wrappingAdd(delta, ordering: .relaxed)
        case 15: w15.wrappingAdd(delta, ordering: .relaxed)
        default: break
        }
    }

    /// Bit `n` set when window size `n` has at least one subscriber now.
    var inUse: UInt16 {
        var mask: UInt16 = 0
        if w9.load(ordering: .relaxed) > 0 { mask |= 1 << 9 }
        if w10.load(ordering: .relaxed) > 0 { mask |= 1 << 10 }
        if w11.load(ordering: .relaxed) > 0 { mask |= 1 << 11 }
        if w12.load(ordering: .relaxed) > 0 { mask |= 1 << 12 }
        if w13.load(ordering: .relaxed) > 0 { mask |= 1 << 13 }
        if w14.load(ordering: .relaxed) > 0 { mask |= 1 << 14 }
        if w15.load(ordering: .relaxed) > 0 { mask |= 1 << 15 }
        return mask
    }
}
