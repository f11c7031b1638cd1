#if canImport(Glibc)
    import Glibc
#endif

/// `count` event loops, each on its own thread. The caller sets each loop up (listener, handlers) before
/// `start`, and `stop` + `join` end them.
public final class LoopGroup: @unchecked Sendable {
    public let loops: [EventLoop]
    private var threads: [pthread_t] = []

    public init(count: Int) throws(Errno) {
        var loops: [EventLoop] = []
        for index in 0..<count { loops.append(try EventLoop(index: index)) }
        self.loops = loops
    }

    /// Starts one thread per loop.
    public func start() {
        for loop in loops {
            threads.append(Self.spawn { loop.run() })
        }
    }

    public func stop() {
        for loop in loops { loop.stop() }
    }

    /// Waits for every loop thread to return from `run`.
    public func join() {
        for thread in threads { pthread_join(thread, nil) }
        threads.removeAll()
    }

    private final class Body {
        let run: () -> Void
        init(_ run: @escaping () -> Void) { self.run = run }
    }

    /// A thread that nobody joins, for short blocking work kept off the loops (host name lookups).
    static func spawnDetached(_ body: @escaping () -> Void) {
        pthread_detach(spawn(body))
    }

    private static func spawn(_ body: @escaping () -> Void) -> pthread_t {
        var thread = pthread_t()
        let context = Unmanaged.passRetained(Body(body)).toOpaque()
        let result = pthread_create(
            &thread, nil,
            { context in
                let body = Unmanaged<Body>.fromOpaque(context!).takeRetainedValue()
                body.run()
                return nil
            }, context)
        precondition(result == 0, "pthread_create failed: \(result)")
        return thread
    }

    /// The CPUs this process may use (affinity and cgroup quota: see AvailableCPUs).
    public static var cpuCount: Int { AvailableCPUs.count() }
}
