import Glibc
import Sockets
import SystemSupport

/// The console back ends' use of the one listener (Sockets.SocketListener): non-blocking,
/// for the poll loop, with the front end's error wording.
extension SocketListener {
    static func console(_ endpoint: SocketEndpoint) throws -> SocketListener {
        do {
            return try SocketListener(endpoint, backlog: 4, nonBlocking: true)
        } catch let error as SocketError {
            switch (endpoint, error) {
            case (_, .pathTooLong(let path, let limit)):
                throw FrontendError.socketPathTooLong(path: path, limit: limit)
            case (.unix(let path), .system(let operation, let code)):
                throw FrontendError.socketFailed(operation: operation, path: path, errno: code)
            case (.tcp(let host, let port), .unresolved(_, _, let reason)):
                throw FrontendError.addressNotFound(address: HostPort.text(host: host, port: String(port)), reason: reason)
            case (.tcp(let host, let port), .system(_, let code)):
                throw FrontendError.tcpListenFailed(address: HostPort.text(host: host, port: String(port)), errno: code)
            case (.unix(let path), .unresolved(_, _, let reason)):
                throw FrontendError.addressNotFound(address: path, reason: reason)
            }
        }
    }

    /// A client for the poll loop, nil when none is waiting. One that arrives while the
    /// process is out of descriptors is hung up on (the listener would otherwise stay
    /// readable and the loop spin); the first refusal of a burst is reported on stderr.
    func acceptClient(serving role: String) -> Int32? {
        let code: Int32
        switch accept(atFileLimit: .refuse) {
        case .client(let fd): return fd
        case .noneWaiting: return nil
        case .refusedAtFileLimit(let refused): code = refused
        case .failed(let failed): code = failed
        }
        if (code == EMFILE || code == ENFILE) && refusalsInARow == 1 {
            FileIO.writeAll(2, "swiftkvm: \(role) \(label): refused a client: \(Errno.text(code))\n")
        }
        return nil
    }
}
