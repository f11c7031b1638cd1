/// Assigns each channel to one Redis instance by rendezvous (highest-random-weight) hashing: the instance
/// whose hash with the channel name scores highest. Every server computes the same answer from the same
/// set of instances, whatever order `REDIS_URL` lists them in, and adding or removing an instance moves
/// only the channels that scored highest on it. The hash is fixed (FNV-1a, then a 64-bit finaliser), never
/// Swift's per-process seeded `Hasher`.
struct ShardRing: Sendable {
    private let seeds: [UInt64]

    init(labels: [String]) {
        seeds = labels.map { Self.fnv1a(Array($0.utf8)[...], seed: 0xcbf2_9ce4_8422_2325) }
    }

    var count: Int { seeds.count }

    func shard(for channel: [UInt8]) -> Int {
        if seeds.count == 1 { return 0 }
        var best = 0
        var bestScore: UInt64 = 0
        for (index, seed) in seeds.enumerated() {
            let score = Self.mix(Self.fnv1a(channel[...], seed: seed))
            if index == 0 || score > bestScore {
                best = index
                bestScore = score
            }
        }
        return best
    }

    static func fnv1a(_ bytes: ArraySlice<UInt8>, seed: UInt64) -> UInt64 {
        var hash = seed
        for byte in bytes {
            hash ^= UInt64(byte)
            hash &*= 0x0000_0100_0000_01b3
        }
        return hash
    }

    /// The splitmix64 finaliser: FNV's low bits alone spread poorly over a handful of instances.
    static func mix(_ value: UInt64) -> UInt64 {
        var z = value &+ 0x9e37_79b9_7f4a_7c15
        z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
        z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
        return z ^ (z >> 31)
    }
}
