import CKVM
import Glibc
import SystemSupport

/// An eventfd(2) counter: KVM signals one for a registered guest access (ioeventfd) and raises an
/// interrupt when one is signalled (irqfd), so a device can be notified and can interrupt the
/// guest without the vCPU leaving KVM_RUN. Non-blocking: `consume` returns nil when nothing is
/// pending, and the descriptor can be polled for readability.
public final class EventFD {
    let fd: OwnedFD

    public init() throws {
        let raw = eventfd(0, Int32(EFD_CLOEXEC | EFD_NONBLOCK))
        guard raw >= 0 else { throw KVMError.systemCall(name: "eventfd", errno: errno) }
        fd = OwnedFD(raw)
    }

    /// For poll(2) and for handing to another process; it stays owned by this value.
    public var rawValue: Int32 { fd.raw }

    /// Adds `count` to the counter, waking whoever waits on it.
    public func signal(_ count: UInt64 = 1) throws {
        guard Errno.retryingInterrupted({ eventfd_write(fd.raw, count) }) == 0 else {
            throw KVMError.systemCall(name: "eventfd write", errno: errno)
        }
    }

    /// Reads and clears the counter: how many signals arrived since the last call, or nil if none.
    public func consume() throws -> UInt64? {
        var value: eventfd_t = 0
        guard Errno.retryingInterrupted({ eventfd_read(fd.raw, &value) }) == 0 else {
            if errno == EAGAIN { return nil }
            throw KVMError.systemCall(name: "eventfd read", errno: errno)
        }
        return value
    }
}
