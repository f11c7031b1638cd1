import Testing

@testable import Philote

@Suite struct ShardRingTests {
    private let channels = (0..<2000).map { Array("channel-\($0)".utf8) }

    @Test func oneInstanceTakesEverything() {
        let ring = ShardRing(labels: ["a:1"])
        #expect(channels.allSatisfy { ring.shard(for: $0) == 0 })
    }

    @Test func theAssignmentDependsOnTheSetNotTheOrder() {
        let forward = ShardRing(labels: ["a:1", "b:2", "c:3"])
        let backward = ShardRing(labels: ["c:3", "b:2", "a:1"])
        for channel in channels {
            #expect(2 - forward.shard(for: channel) == backward.shard(for: channel))
        }
    }

    @Test func channelsSpreadEvenly() {
        let ring = ShardRing(labels: ["10.0.0.1:6379", "10.0.0.2:6379", "10.0.0.3:6379"])
        var counts = [0, 0, 0]
        for channel in channels { counts[ring.shard(for: channel)] += 1 }
        // 2000 / 3 ≈ 667 each; a fair hash stays well within ±15 %.
        #expect(counts.allSatisfy { (567...767).contains($0) }, "\(counts)")
    }

    @Test func addingAnInstanceMovesOnlyItsShare() {
        let before = ShardRing(labels: ["a:1", "b:2", "c:3"])
        let after = ShardRing(labels: ["a:1", "b:2", "c:3", "d:4"])
        var moved = 0
        for channel in channels where before.shard(for: channel) != after.shard(for: channel) {
            moved += 1
            // A channel that moves, moves to the new instance.
            #expect(after.shard(for: channel) == 3)
        }
        #expect((300...700).contains(moved), "\(moved) of 2000 moved")
    }

    @Test func theHashIsFixedAcrossProcesses() {
        // FNV-1a's published test vector, then the finaliser: the same on every server and every run.
        #expect(ShardRing.fnv1a(Array("a".utf8)[...], seed: 0xcbf2_9ce4_8422_2325) == 0xaf63_dc4c_8601_ec8c)
        #expect(
            ShardRing(labels: ["x:1", "y:2"]).shard(for: Array("news".utf8))
                == ShardRing(labels: ["x:1", "y:2"]).shard(for: Array("news".utf8)))
    }
}
