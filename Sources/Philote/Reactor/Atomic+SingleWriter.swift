import Synchronization

extension Atomic where Value == UInt64 {
    /// Adds `amount` from the counter's only writer thread (its event loop), so that other threads may
    /// read it at any time. A relaxed load and store, not a read-modify-write: it compiles to a plain
    /// `add` on memory (no `lock` prefix, no fence), so counting costs the hot path what a plain integer
    /// would, while a reader on another thread (a `/metrics` scrape) is still free of data races.
    @inline(__always)
    func add(fromOwner amount: UInt64) {
        store(load(ordering: .relaxed) &+ amount, ordering: .relaxed)
    }
}

extension Atomic where Value == Int {
    /// The gauge form of `add(fromOwner:)`: a relaxed load and store by the only writer.
    @inline(__always)
    func add(fromOwner amount: Int) {
        store(load(ordering: .relaxed) &+ amount, ordering: .relaxed)
    }
}
