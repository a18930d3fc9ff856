import Glibc
import SystemSupport

/// Outgoing stream connections; returns a blocking socket.
public enum SocketConnector {
    /// TCP tries every address the host resolves to, each bounded by `timeoutSeconds`; an
    /// empty host means localhost. Unix sockets connect at once or fail.
    public static func connect(_ endpoint: SocketEndpoint, timeoutSeconds: Int) throws -> Int32 {
        switch endpoint {
        case .unix(let path):
            var address = try UnixAddress.make(path)
            let fd = try SocketDescriptor.open(family: AF_UNIX, type: Int32(SOCK_STREAM.rawValue), proto: 0)
            if UnixAddress.withSockaddr(&address, { Glibc.connect(fd, $0, $1) }) != 0 {
                let code = errno
                Glibc.close(fd)
                throw SocketError.system(operation: "connect", errno: code)
            }
            return fd
        case .tcp(let host, let port):
            var lastError = SocketError.system(operation: "connect", errno: ECONNREFUSED)
            for candidate in try ResolvedAddress.resolve(host: host.isEmpty ? "localhost" : host, port: String(port), passive: false) {
                do { return try connect(candidate, timeoutSeconds: timeoutSeconds) } catch let error as SocketError {
                    lastError = error
                }
            }
            throw lastError
        }
    }

    private static func connect(_ candidate: ResolvedAddress, timeoutSeconds: Int) throws -> Int32 {
        let fd = try SocketDescriptor.open(family: candidate.family, type: candidate.type | Int32(SOCK_NONBLOCK.rawValue), proto: candidate.proto)
        let started = candidate.withSockaddr { Glibc.connect(fd, $0, $1) }
        var failure: Int32 = 0
        if started != 0 {
            if errno == EINPROGRESS {
                var entry = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
                let ready = Errno.retryingInterrupted { poll(&entry, 1, Int32(timeoutSeconds * 1000)) }
                if ready == 0 {
                    failure = ETIMEDOUT
                } else {
                    var soError: Int32 = 0
                    var length = socklen_t(MemoryLayout<Int32>.size)
                    _ = getsockopt(fd, SOL_SOCKET, SO_ERROR, &soError, &length)
                    failure = soError
                }
            } else {
                failure = errno
            }
        }
        if failure != 0 {
            Glibc.close(fd)
            throw SocketError.system(operation: "connect", errno: failure)
        }
        let flags = fcntl(fd, F_GETFL)
        _ = fcntl(fd, F_SETFL, flags & ~O_NONBLOCK)
        return fd
    }
}
