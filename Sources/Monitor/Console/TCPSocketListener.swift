import Glibc

/// A listening TCP socket (`tcp:HOST:PORT,server`). An empty host listens on every address;
/// port 0 takes a free port (see `port`).
final class TCPSocketListener: ConnectionListener {
    let host: String
    let fd: Int32
    /// The bound port (useful after asking for port 0).
    let port: UInt16

    init(host: String, port: UInt16) throws {
        let shown = "\(host.contains(":") ? "[\(host)]" : host):\(port)"
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_family = AF_UNSPEC
        hints.ai_flags = AI_PASSIVE
        var list: UnsafeMutablePointer<addrinfo>?
        let status = getaddrinfo(host.isEmpty ? nil : host, String(port), &hints, &list)
        guard status == 0 else {
            throw FrontendError.addressNotFound(address: shown, reason: String(cString: gai_strerror(status)))
        }
        defer { freeaddrinfo(list) }
        var lastError = EADDRNOTAVAIL
        var node = list
        var bound: Int32 = -1
        while let entry = node?.pointee, bound < 0 {
            node = entry.ai_next
            let candidate = socket(entry.ai_family, entry.ai_socktype | Int32(SOCK_CLOEXEC.rawValue), entry.ai_protocol)
            guard candidate >= 0 else { lastError = errno; continue }
            var one: Int32 = 1
            _ = setsockopt(candidate, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
            if bind(candidate, entry.ai_addr, entry.ai_addrlen) == 0 && listen(candidate, 4) == 0 {
                bound = candidate
            } else {
                lastError = errno
                Glibc.close(candidate)
            }
        }
        guard bound >= 0 else { throw FrontendError.tcpListenFailed(address: shown, errno: lastError) }
        FileIO.setNonBlocking(bound)
        self.host = host
        self.fd = bound
        self.port = Self.boundPort(bound) ?? port
    }

    var label: String { "tcp:\(host.contains(":") ? "[\(host)]" : host):\(port)" }

    private static func boundPort(_ fd: Int32) -> UInt16? {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let ok = withUnsafeMutablePointer(to: &storage) {
            // SAFETY: sockaddr_storage is large enough for any address getsockname returns.
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) == 0 }
        }
        guard ok else { return nil }
        switch Int32(storage.ss_family) {
        case AF_INET:
            // SAFETY: the family says the storage holds a sockaddr_in.
            return withUnsafePointer(to: &storage) { $0.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { UInt16(bigEndian: $0.pointee.sin_port) } }
        case AF_INET6:
            // SAFETY: the family says the storage holds a sockaddr_in6.
            return withUnsafePointer(to: &storage) { $0.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { UInt16(bigEndian: $0.pointee.sin6_port) } }
        default:
            return nil
        }
    }

    func close() { FileIO.close(fd) }
}

/// What the socket back ends need of a listener, unix or TCP.
protocol ConnectionListener: AnyObject {
    var fd: Int32 { get }
    /// How `info chardev` and messages name it: `unix:PATH` or `tcp:HOST:PORT`.
    var label: String { get }
    func close()
}

extension ConnectionListener {
    /// A connected client, non-blocking; nil when none is waiting.
    func accept() -> Int32? {
        while true {
            let client = Glibc.accept(fd, nil, nil)
            if client >= 0 {
                FileIO.setNonBlocking(client)
                FileIO.setCloseOnExec(client)
                return client
            }
            if errno == EINTR || errno == ECONNABORTED { continue }
            return nil
        }
    }

    /// Blocks until a client connects (QEMU's `server` without `nowait`).
    func waitForClient() -> Int32? {
        while true {
            if let client = accept() { return client }
            guard errno == EAGAIN || errno == EWOULDBLOCK else { return nil }
            var pending = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            _ = poll(&pending, 1, -1)
        }
    }
}
