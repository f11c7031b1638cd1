#if canImport(Glibc)
    import Glibc
#endif

/// A pthread mutex guarding state kept elsewhere (the owner's own properties), for the same reason as
/// `PThreadMutex`: ThreadSanitizer sees its hand-over. Not `PThreadMutex<Void>`: ThreadSanitizer takes an
/// access to a zero-sized value for one at the neighbouring field, and reports a race that is not there.
final class PThreadLock: @unchecked Sendable {
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>

    init() {
        mutex = .allocate(capacity: 1)
        pthread_mutex_init(mutex, nil)
    }

    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }

    func withLock<Result>(_ body: () throws -> Result) rethrows -> Result {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body()
    }
}
