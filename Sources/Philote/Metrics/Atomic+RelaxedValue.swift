import Synchronization

// The value as a scrape reads it: a relaxed load, since each figure is read on its own and orders no other
// memory.

extension Atomic where Value == UInt64 {
    var relaxedValue: UInt64 { load(ordering: .relaxed) }
}

extension Atomic where Value == Int {
    var relaxedValue: Int { load(ordering: .relaxed) }
}
