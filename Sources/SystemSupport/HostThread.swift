import CSystemSupport
import Glibc

/// A POSIX thread running a closure, named for ps/top and gdb. Joinable threads (vCPUs, the
/// throttle timer) are ended and joined by their owner; `detach` starts one nobody waits for
/// (a migration, a background save), whose resources go back to the system when it returns.
public final class HostThread: @unchecked Sendable {
    private final class Box {
        let name: String, body: () -> Void
        init(_ name: String, _ body: @escaping () -> Void) { self.name = name; self.body = body }
    }
    public private(set) var handle = pthread_t()

    public init(name: String, _ body: @escaping () -> Void) throws {
        handle = try Self.create(name: name, detached: false, body)
    }

    /// Starts a thread that runs `body` and then ends on its own.
    public static func detach(name: String, _ body: @escaping () -> Void) throws {
        _ = try create(name: name, detached: true, body)
    }

    private static func create(name: String, detached: Bool, _ body: @escaping () -> Void) throws -> pthread_t {
        var handle = pthread_t()
        var attributes = pthread_attr_t()
        pthread_attr_init(&attributes)
        defer { pthread_attr_destroy(&attributes) }
        if detached { pthread_attr_setdetachstate(&attributes, Int32(PTHREAD_CREATE_DETACHED)) }
        let box = Unmanaged.passRetained(Box(name, body)).toOpaque()
        let r = pthread_create(&handle, &attributes, { arg in
            // SAFETY: `arg` is the retained Box passed below; released exactly once here.
            let box = Unmanaged<Box>.fromOpaque(arg!).takeRetainedValue()
            // Named from inside: a detached thread may be gone before pthread_create returns.
            _ = csystem_thread_setname(UInt(pthread_self()), box.name)
            box.body()
            return nil
        }, box)
        guard r == 0 else {
            Unmanaged<Box>.fromOpaque(box).release()
            throw SystemCallError(call: "pthread_create(\(name))", errno: r)
        }
        return handle
    }

    /// Interrupts a blocking system call (KVM_RUN) in this thread with `signal`.
    public func kick(signal: Int32) { _ = csystem_thread_kill(UInt(handle), signal) }

    public func join() { pthread_join(handle, nil) }

    /// Installs the no-op handler that lets `kick` interrupt KVM_RUN. Call once per process.
    public static func installKickHandler(signal: Int32) { _ = csystem_install_kick_handler(signal) }

    public static func currentKernelThreadID() -> Int { Int(csystem_gettid()) }
}
