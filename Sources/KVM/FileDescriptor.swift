import CKVM
import Glibc

/// An owned file descriptor that closes itself, with ioctl helpers that turn errno into
/// `KVMError.ioctl` naming the call.
final class OwnedFD {
    let raw: Int32

    init(_ raw: Int32) { self.raw = raw }
    deinit { close(raw) }

    @discardableResult
    func ioctl(_ name: String, _ request: UInt, _ value: UInt = 0) throws -> Int32 {
        while true {
            let r = ckvm_ioctl_val(raw, request, value)
            if r >= 0 { return r }
            if errno == EINTR && request != CKVM_RUN { continue }
            throw KVMError.ioctl(call: name, errno: errno)
        }
    }

    @discardableResult
    func ioctl<T>(_ name: String, _ request: UInt, _ arg: inout T) throws -> Int32 {
        while true {
            // SAFETY: `arg` is a live inout value of the exact C struct the request expects.
            let r = withUnsafeMutablePointer(to: &arg) { ckvm_ioctl_ptr(raw, request, $0) }
            if r >= 0 { return r }
            if errno == EINTR { continue }
            throw KVMError.ioctl(call: name, errno: errno)
        }
    }

    @discardableResult
    func ioctl(_ name: String, _ request: UInt, pointer: UnsafeMutableRawPointer) throws -> Int32 {
        while true {
            let r = ckvm_ioctl_ptr(raw, request, pointer)
            if r >= 0 { return r }
            if errno == EINTR { continue }
            throw KVMError.ioctl(call: name, errno: errno)
        }
    }
}
