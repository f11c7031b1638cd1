import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// The context new TLS connections start with, replaced on reload (SIGHUP, or the files' modification
/// time changing). A bad new pair is refused and the old one kept.
public final class TLSContextStore: Sendable {
    private let state: Mutex<(context: TLSContext, modified: [Int])>

    public init(_ context: TLSContext) {
        state = Mutex((context, Self.modificationTimes(context)))
    }

    public var current: TLSContext { state.withLock { $0.context } }

    /// Loads the same files again. Returns the new context, or throws and keeps the old one.
    @discardableResult
    public func reload() throws(TLSContext.LoadError) -> TLSContext {
        let old = current
        let fresh = try TLSContext(
            certificateFile: old.certificateFile, keyFile: old.keyFile, recordLayer: old.recordLayer)
        state.withLock { $0 = (fresh, Self.modificationTimes(fresh)) }
        return fresh
    }

    /// Whether either file changed on disk since the current context was loaded (an ACME renewal).
    public var filesChanged: Bool {
        let (context, known) = state.withLock { ($0.context, $0.modified) }
        return Self.modificationTimes(context) != known
    }

    private static func modificationTimes(_ context: TLSContext) -> [Int] {
        [context.certificateFile, context.keyFile].map { path in
            var info = stat()
            guard stat(path, &info) == 0 else { return -1 }
            return Int(info.st_mtim.tv_sec) * 1_000_000_000 + Int(info.st_mtim.tv_nsec) ^ Int(info.st_size) << 1
        }
    }
}
