import CKVM
import Glibc

/// A userfaultfd(2): missing-page faults in registered ranges of this process's memory stop
/// the faulting thread (a vCPU inside KVM_RUN included, since KVM resolves guest pages through
/// the same host page tables) and arrive here as addresses, until `copy` fills the page and
/// wakes the thread. Postcopy migration registers guest RAM with it. Checked on this
/// project's PVM host: a vCPU's instruction fetch and data read of a missing page both fault
/// here and resume after UFFDIO_COPY.
public final class UserFault {
    let fd: OwnedFD

    /// Opens a userfaultfd and agrees on the API (no optional features are needed).
    public init() throws {
        let raw = ckvm_userfaultfd_open()
        guard raw >= 0 else { throw KVMError.systemCall(name: "userfaultfd", errno: errno) }
        fd = OwnedFD(raw)
        var api = uffdio_api(api: CKVM_UFFD_API, features: 0, ioctls: 0)
        try fd.ioctl("UFFDIO_API", CKVM_UFFDIO_API, &api)
    }

    /// For poll(2); it stays owned by this value.
    public var rawValue: Int32 { fd.raw }

    /// From now on a missing page in `length` bytes at `start` (page-aligned) faults here.
    public func registerMissing(_ start: UnsafeMutableRawPointer, length: Int) throws {
        var register = uffdio_register(range: uffdio_range(start: UInt64(UInt(bitPattern: start)), len: UInt64(length)),
                                       mode: CKVM_UFFDIO_REGISTER_MODE_MISSING, ioctls: 0)
        try fd.ioctl("UFFDIO_REGISTER", CKVM_UFFDIO_REGISTER, &register)
    }

    public func unregister(_ start: UnsafeMutableRawPointer, length: Int) throws {
        var range = uffdio_range(start: UInt64(UInt(bitPattern: start)), len: UInt64(length))
        try fd.ioctl("UFFDIO_UNREGISTER", CKVM_UFFDIO_UNREGISTER, &range)
    }

    /// Fills the missing pages at `destination` with `length` bytes (whole pages) from `source`
    /// and wakes every thread waiting on them, in one call where it can; a page already there
    /// (filled before) is skipped and its copy dropped. Returns the bytes placed.
    @discardableResult
    public func copy(to destination: UnsafeMutableRawPointer, from source: UnsafeRawPointer, length: Int, pageSize: Int) throws -> Int {
        var done = 0, placed = 0
        while done < length {
            var request = uffdio_copy(dst: UInt64(UInt(bitPattern: destination + done)), src: UInt64(UInt(bitPattern: source + done)),
                                      len: UInt64(length - done), mode: 0, copy: 0)
            // SAFETY: `request` is the uffdio_copy UFFDIO_COPY reads and updates; the kernel
            // checks both ranges against this process's mappings.
            let result = withUnsafeMutablePointer(to: &request) { ckvm_ioctl_ptr(fd.raw, CKVM_UFFDIO_COPY, $0) }
            if result == 0 { return placed + length - done }
            let failure = errno
            // The kernel stops at the first page it could not fill and says how far it got
            // (`copy`, negative when it got nowhere).
            if request.copy > 0 {
                done += Int(request.copy)
                placed += Int(request.copy)
            }
            switch failure {
            // The page at `done` is there already.
            case EEXIST: done += pageSize
            // The address space changed underneath (EAGAIN: also a partial copy) or a signal
            // came: what was not placed is tried again.
            case EAGAIN, EINTR: continue
            default: throw KVMError.ioctl(call: "UFFDIO_COPY", errno: failure)
            }
        }
        return placed
    }

    /// Wakes threads waiting on a range that is already filled.
    public func wake(_ start: UnsafeMutableRawPointer, length: Int) throws {
        var range = uffdio_range(start: UInt64(UInt(bitPattern: start)), len: UInt64(length))
        try fd.ioctl("UFFDIO_WAKE", CKVM_UFFDIO_WAKE, &range)
    }

    /// The address of the next pending fault, or nil when none is pending (poll `rawValue`).
    public func nextFault() throws -> UInt? {
        var address: UInt64 = 0
        let result = ckvm_userfaultfd_read_fault(fd.raw, &address)
        guard result >= 0 else { throw KVMError.systemCall(name: "userfaultfd read", errno: errno) }
        return result == 1 ? UInt(address) : nil
    }
}
