#if canImport(Glibc)
    import Glibc
#endif

/// A value behind a pthread mutex. Swift's `Mutex` waits on a priority-inheritance futex inside the runtime once
/// it is contended, where ThreadSanitizer cannot see the hand-over: every task passed between loops was reported
/// as a race and a TSan run exited 66. A pthread mutex is one TSan understands; uncontended, it costs the same.
final class PThreadMutex<Value>: @unchecked Sendable {
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private var value: Value

    init(_ value: Value) {
        mutex = .allocate(capacity: 1)
        pthread_mutex_init(mutex, nil)
        self.value = value
    }

    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }

    func withLock<Result>(_ body: (inout Value) throws -> Result) rethrows -> Result {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body(&value)
    }
}
