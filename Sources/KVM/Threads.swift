import CKVM
import Glibc

/// A mutex with a condition variable. The run loop and the monitor meet here when pausing.
public final class ConditionLock: @unchecked Sendable {
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

    public func broadcast() { pthread_cond_broadcast(cond) }
}

/// A joinable POSIX thread running a closure; its pthread id lets others signal it.
public final class HostThread: @unchecked Sendable {
    private final class Box { let body: () -> Void; init(_ b: @escaping () -> Void) { body = b } }
    public private(set) var handle = pthread_t()

    public init(name: String, _ body: @escaping () -> Void) throws {
        let box = Unmanaged.passRetained(Box(body)).toOpaque()
        let r = pthread_create(&handle, nil, { arg in
            // SAFETY: `arg` is the retained Box passed below; released exactly once here.
            let box = Unmanaged<Box>.fromOpaque(arg!).takeRetainedValue()
            box.body()
            return nil
        }, box)
        guard r == 0 else {
            Unmanaged<Box>.fromOpaque(box).release()
            throw KVMError.ioctl(call: "pthread_create(\(name))", errno: r)
        }
        _ = ckvm_thread_setname(UInt(handle), name)
    }

    /// Interrupts a blocking system call (KVM_RUN) in this thread with `signal`.
    public func kick(signal: Int32) { _ = ckvm_thread_kill(UInt(handle), signal) }

    public func join() { pthread_join(handle, nil) }

    /// Installs the no-op handler that lets `kick` interrupt KVM_RUN. Call once per process.
    public static func installKickHandler(signal: Int32) { _ = ckvm_install_kick_handler(signal) }

    public static func currentKernelThreadID() -> Int { Int(ckvm_gettid()) }
}
