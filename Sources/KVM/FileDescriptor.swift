import CKVM
import Glibc
import SystemSupport

/// An owned file descriptor that closes itself, with ioctl helpers that turn errno into
/// `KVMError.ioctl` naming the call.
final class OwnedFD {
    let raw: Int32

    init(_ raw: Int32) { self.raw = raw }
    deinit { close(raw) }

    @discardableResult
    func ioctl(_ name: String, _ request: UInt, _ value: UInt = 0) throws -> Int32 {
        // KVM_RUN's EINTR is a kick the caller must see (VCPU.run calls it directly).
        let r = request == CKVM_RUN ? ckvm_ioctl_val(raw, request, value)
                                    : Errno.retryingInterrupted { ckvm_ioctl_val(raw, request, value) }
        guard r >= 0 else { throw KVMError.ioctl(call: name, errno: errno) }
        return r
    }

    @discardableResult
    func ioctl<T>(_ name: String, _ request: UInt, _ arg: inout T) throws -> Int32 {
        // SAFETY: `arg` is a live inout value of the exact C struct the request expects.
        let r = withUnsafeMutablePointer(to: &arg) { pointer in
            Errno.retryingInterrupted { ckvm_ioctl_ptr(raw, request, pointer) }
        }
        guard r >= 0 else { throw KVMError.ioctl(call: name, errno: errno) }
        return r
    }

    @discardableResult
    func ioctl(_ name: String, _ request: UInt, pointer: UnsafeMutableRawPointer) throws -> Int32 {
        let r = Errno.retryingInterrupted { ckvm_ioctl_ptr(raw, request, pointer) }
        guard r >= 0 else { throw KVMError.ioctl(call: name, errno: errno) }
        return r
    }
}
