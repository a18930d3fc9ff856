import Glibc
import SystemSupport

/// Failures of the monitor front end and the console back ends.
public enum FrontendError: Error, Equatable, CustomStringConvertible, ErrnoCarrying {
    case socketPathTooLong(path: String, limit: Int)
    case socketFailed(operation: String, path: String, errno: Int32)
    case fileOpenFailed(path: String, errno: Int32)
    case pipeFailed(errno: Int32)
    case pollFailed(errno: Int32)
    case addressNotFound(address: String, reason: String)
    case tcpListenFailed(address: String, errno: Int32)
    case ptyFailed(operation: String, errno: Int32)

    public var errnoCode: Int32? {
        switch self {
        case .socketFailed(_, _, let code), .fileOpenFailed(_, let code), .pipeFailed(let code),
             .pollFailed(let code), .tcpListenFailed(_, let code), .ptyFailed(_, let code):
            return code
        case .socketPathTooLong, .addressNotFound:
            return nil
        }
    }

    public var description: String {
        switch self {
        case .socketPathTooLong(let path, let limit):
            return "unix socket path '\(path)' is longer than \(limit) bytes; use a shorter path"
        case .socketFailed(let operation, let path, let errno):
            return "unix socket \(path): \(operation) failed: \(Errno.text(errno))"
        case .fileOpenFailed(let path, let errno):
            return "cannot open '\(path)' for console output: \(Errno.text(errno))"
        case .pipeFailed(let errno):
            return "cannot create the monitor's wakeup pipe: \(Errno.text(errno))"
        case .pollFailed(let errno):
            return "waiting for terminal and socket input failed: \(Errno.text(errno))"
        case .addressNotFound(let address, let reason):
            return "cannot listen on tcp:\(address): \(reason)"
        case .tcpListenFailed(let address, let errno):
            return "cannot listen on tcp:\(address): \(Errno.text(errno)); choose another port or address"
        case .ptyFailed(let operation, let errno):
            return "cannot create a pseudo-terminal for -serial pty: \(operation) failed: \(Errno.text(errno))"
        }
    }
}

extension FrontendError {
    /// A non-blocking pipe that wakes a poll loop; a failure reads as the monitor's own.
    static func wakeupPipe() throws -> (read: Int32, write: Int32) {
        do {
            return try FileIO.makePipe()
        } catch let e as SystemCallError {
            throw FrontendError.pipeFailed(errno: e.errno)
        }
    }
}
