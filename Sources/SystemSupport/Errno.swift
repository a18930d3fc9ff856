import Glibc

/// errno values: their text, and the one retry loop for calls a signal can interrupt.
public enum Errno {
    /// strerror's words for `code`, e.g. "No such file or directory".
    public static func text(_ code: Int32) -> String { String(cString: strerror(code)) }

    /// Calls `call` again for as long as it fails with EINTR (a signal arrived first): for the
    /// calls that return -1 and set errno. Any other result, success or failure, is returned.
    @inlinable
    public static func retryingInterrupted<T: SignedInteger>(_ call: () -> T) -> T {
        while true {
            let result = call()
            if result != -1 || errno != EINTR { return result }
        }
    }
}

/// A host call (not an ioctl: KVMError names those) failed with `errno`.
public struct SystemCallError: Error, Equatable, CustomStringConvertible, ErrnoCarrying {
    /// The call and what it was for, e.g. "pthread_create(vcpu0)".
    public var call: String
    public var errno: Int32

    public init(call: String, errno: Int32) { self.call = call; self.errno = errno }

    public var errnoCode: Int32? { errno }
    public var description: String { "\(call) failed: \(Errno.text(errno)) (errno \(errno))" }
}
