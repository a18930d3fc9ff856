import Glibc
import SystemSupport

/// A failed call into the kernel, naming the call and the errno.
public enum KVMError: Error, CustomStringConvertible, Equatable, ErrnoCarrying {
    case open(path: String, errno: Int32)
    /// A host call other than an ioctl (eventfd, read, write) failed.
    case systemCall(name: String, errno: Int32)
    case ioctl(call: String, errno: Int32)
    case mmap(what: String, size: Int, errno: Int32)
    case unsupportedAPIVersion(Int32)
    /// A capability swiftkvm needs (KVMSystem.requiredCapabilities) is absent.
    case missingCapability(String)
    /// A call that takes a list handled only the first `got` entries.
    case shortTransfer(call: String, expected: Int, got: Int)

    public var description: String {
        switch self {
        case .open(let path, let err):
            var hint = ""
            if err == ENOENT { hint = " (is the kvm module loaded?)" }
            if err == EACCES { hint = " (run as root or join the kvm group)" }
            return "cannot open \(path): \(Errno.text(err))\(hint)"
        case .systemCall(let name, let err):
            return "\(name) failed: \(Errno.text(err)) (errno \(err))"
        case .ioctl(let call, let err):
            return "\(call) failed: \(Errno.text(err)) (errno \(err))"
        case .mmap(let what, let size, let err):
            return "cannot map \(what) (\(size) bytes): \(Errno.text(err))"
        case .unsupportedAPIVersion(let v):
            return "/dev/kvm speaks API version \(v); swiftkvm needs version 12"
        case .missingCapability(let cap):
            return "this host's KVM lacks \(cap)"
        case .shortTransfer(let call, let expected, let got):
            return "\(call) handled \(got) of \(expected) entries"
        }
    }

    public var errnoCode: Int32? {
        switch self {
        case .open(_, let err), .systemCall(_, let err), .ioctl(_, let err), .mmap(_, _, let err): return err
        case .unsupportedAPIVersion, .missingCapability, .shortTransfer: return nil
        }
    }
}
