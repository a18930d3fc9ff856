import Glibc
import SystemSupport

/// Why a socket could not be opened. Each layer words it for its own users (a migration URI,
/// a `-qmp` address), so the cause travels as data, not as text.
public enum SocketError: Error, Equatable, CustomStringConvertible, ErrnoCarrying {
    case pathTooLong(path: String, limit: Int)
    /// getaddrinfo could not resolve the host; `reason` is its own text.
    case unresolved(host: String, port: String, reason: String)
    /// A call failed: `operation` is `socket`, `bind`, `listen` or `connect`.
    case system(operation: String, errno: Int32)

    public var errno: Int32? {
        if case .system(_, let code) = self { return code }
        return nil
    }

    public var errnoCode: Int32? { errno }

    public var description: String {
        switch self {
        case .pathTooLong(let path, let limit):
            return "unix socket path '\(path)' is longer than \(limit) bytes; use a shorter path"
        case .unresolved(let host, let port, let reason):
            return "cannot resolve '\(host):\(port)': \(reason)"
        case .system(let operation, let code):
            return "\(operation) failed: \(Errno.text(code))"
        }
    }
}
