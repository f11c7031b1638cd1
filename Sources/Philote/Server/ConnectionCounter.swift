import Synchronization

/// A count with a limit, shared by all loops: open WebSocket connections (`MAX_CONNECTIONS`: a place is reserved
/// before the 101 is sent, so the limit holds under concurrent handshakes on every loop), and sockets not yet
/// upgraded (`MAX_PENDING_HANDSHAKES`: a place is taken at accept).
public final class ConnectionCounter: Sendable {
    private let count = Atomic<Int>(0)
    public let limit: Int

    public init(limit: Int) {
        self.limit = limit
    }

    public var current: Int { count.load(ordering: .relaxed) }

    func reserve() -> Bool {
        if count.wrappingAdd(1, ordering: .relaxed).newValue > limit {
            count.wrappingSubtract(1, ordering: .relaxed)
            return false
        }
        return true
    }

    func release() {
        count.wrappingSubtract(1, ordering: .relaxed)
    }
}
