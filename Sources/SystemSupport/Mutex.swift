import Glibc

/// The one lock: a pthread mutex with a condition variable, at a stable address. Most users
/// only take it (`withLock`); the run loop, the vCPU threads and the migration threads also
/// wait on it for a change another thread announces with `broadcast`.
/// (A class, not the standard library's `Synchronization.Mutex`: that one has no condition
/// variable and is not imported anywhere here.)
public final class Mutex: @unchecked Sendable {
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let cond = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)

    public init() {
        // SAFETY: freshly allocated storage, initialised once here and destroyed in deinit.
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(cond, nil)
    }

    deinit {
        pthread_cond_destroy(cond); pthread_mutex_destroy(mutex)
        mutex.deallocate(); cond.deallocate()
    }

    public func lock() { pthread_mutex_lock(mutex) }
    public func unlock() { pthread_mutex_unlock(mutex) }

    public func withLock<T>(_ body: () throws -> T) rethrows -> T {
        lock(); defer { unlock() }
        return try body()
    }

    /// Waits (lock held) until signalled or `timeoutNanoseconds` pass; false on timeout.
    @discardableResult
    public func wait(timeoutNanoseconds: UInt64? = nil) -> Bool {
        guard let timeout = timeoutNanoseconds else {
            pthread_cond_wait(cond, mutex)
            return true
        }
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        let total = UInt64(now.tv_nsec) + timeout
        var deadline = timespec(tv_sec: now.tv_sec + Int(total / 1_000_000_000), tv_nsec: Int(total % 1_000_000_000))
        return pthread_cond_timedwait(cond, mutex, &deadline) != ETIMEDOUT
    }

    /// Wakes every thread waiting in `wait`.
    public func broadcast() { pthread_cond_broadcast(cond) }
}
