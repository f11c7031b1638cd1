import CSystem

/// A server process's random identity on the broker: envelopes carry it so that a server skips the copy of
/// its own publish that Redis sends back (its local readers already have it).
public struct ServerID: Equatable, Sendable {
    private var high: UInt64 = 0
    private var low: UInt64 = 0

    static func random() -> ServerID {
        var id = ServerID()
        let ok = withUnsafeMutableBytes(of: &id) {
            CSystem_random_bytes($0.baseAddress!.assumingMemoryBound(to: UInt8.self), 16)
        }
        precondition(ok == 1, "RAND_bytes failed")
        return id
    }

    /// From the 16 bytes `append` wrote.
    init(bytes: UnsafeRawBufferPointer) {
        precondition(bytes.count == 16)
        withUnsafeMutableBytes(of: &self) { $0.copyMemory(from: bytes) }
    }

    private init() {}

    func append(to out: inout [UInt8]) {
        withUnsafeBytes(of: self) { out.append(contentsOf: $0) }
    }
}
