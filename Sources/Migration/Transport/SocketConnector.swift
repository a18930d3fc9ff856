import Glibc

/// Opens migration connections: outgoing `connect`, incoming `listen` + one `accept`.
enum SocketConnector {
    static func connect(to uri: MigrationURI) throws -> MigrationSocket {
        switch uri {
        case .unix(let path):
            let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            guard fd >= 0 else { throw MigrationError.connectFailed(uri: uri.description, errno: errno) }
            var address = unixAddress(path)
            let result = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
                }
            }
            if result != 0 {
                let err = errno
                Glibc.close(fd)
                throw MigrationError.connectFailed(uri: uri.description, errno: err)
            }
            return MigrationSocket(fd: fd)
        case .tcp(let host, let port):
            var lastError = ECONNREFUSED
            for candidate in try resolve(host: host.isEmpty ? "localhost" : host, port: port, passive: false) {
                do {
                    return MigrationSocket(fd: try connectWithTimeout(candidate))
                } catch MigrationError.io(_, let err) {
                    lastError = err
                }
            }
            throw MigrationError.connectFailed(uri: uri.description, errno: lastError)
        case .exec(let command):
            return try CommandChannel.spawn(command, uri: uri)
        case .stdio:
            // The source's stdin and stdout belong to its monitor and console.
            throw MigrationError.invalidURI("stdio")
        case .file:
            // A snapshot needs its commit step: OutgoingMigration opens it through SnapshotFile.
            throw MigrationError.invalidURI(uri.description)
        }
    }

    /// Binds and listens; the caller accepts one connection with `acceptOne`.
    static func listen(on uri: MigrationURI) throws -> Int32 {
        switch uri {
        case .unix(let path):
            let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            guard fd >= 0 else { throw MigrationError.listenFailed(uri: uri.description, errno: errno) }
            // A stale socket file from an earlier run would make bind fail with EADDRINUSE.
            unlink(path)
            var address = unixAddress(path)
            let bound = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
                }
            }
            guard bound == 0, Glibc.listen(fd, 1) == 0 else {
                let err = errno
                Glibc.close(fd)
                throw MigrationError.listenFailed(uri: uri.description, errno: err)
            }
            return fd
        case .tcp(let host, let port):
            let name: String? = uri.listensOnAllAddresses ? nil : host
            var lastError = EADDRNOTAVAIL
            for candidate in try resolve(host: name, port: port, passive: true) {
                let fd = socket(candidate.family, candidate.type | Int32(SOCK_CLOEXEC.rawValue), candidate.proto)
                guard fd >= 0 else { lastError = errno; continue }
                var one: Int32 = 1
                _ = setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
                let ok = candidate.address.withUnsafeBytes {
                    bind(fd, $0.baseAddress!.assumingMemoryBound(to: sockaddr.self), candidate.length) == 0
                } && Glibc.listen(fd, 1) == 0
                if ok { return fd }
                lastError = errno
                Glibc.close(fd)
            }
            throw MigrationError.listenFailed(uri: uri.description, errno: lastError)
        case .exec, .stdio, .file:
            // Nothing to listen on: IncomingMigration opens these directly.
            throw MigrationError.listenFailed(uri: uri.description, errno: EINVAL)
        }
    }

    /// Accepts exactly one connection and closes the listener, so later connections are refused.
    static func acceptOne(listener: Int32) throws -> MigrationSocket {
        defer { Glibc.close(listener) }
        while true {
            let fd = accept(listener, nil, nil)
            if fd >= 0 {
                _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
                return MigrationSocket(fd: fd)
            }
            if errno == EINTR { continue }
            throw errno == EINVAL ? MigrationError.cancelled : MigrationError.acceptFailed(errno: errno)
        }
    }

    /// The TCP port a listener is bound to (useful after asking for port 0).
    static func boundPort(of listener: Int32) -> Int? {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let ok = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(listener, $0, &length) == 0 }
        }
        guard ok else { return nil }
        switch Int32(storage.ss_family) {
        case AF_INET:
            return withUnsafePointer(to: &storage) {
                $0.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { Int(UInt16(bigEndian: $0.pointee.sin_port)) }
            }
        case AF_INET6:
            return withUnsafePointer(to: &storage) {
                $0.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { Int(UInt16(bigEndian: $0.pointee.sin6_port)) }
            }
        default:
            return nil
        }
    }

    private struct ResolvedAddress {
        var family: Int32, type: Int32, proto: Int32
        var address: [UInt8]
        var length: socklen_t
    }

    private static func resolve(host: String?, port: String, passive: Bool) throws -> [ResolvedAddress] {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_family = AF_UNSPEC
        if passive { hints.ai_flags = AI_PASSIVE }
        var list: UnsafeMutablePointer<addrinfo>?
        let status = getaddrinfo(host, port, &hints, &list)
        guard status == 0 else {
            throw MigrationError.addressNotFound(host: host ?? "*", port: port, reason: String(cString: gai_strerror(status)))
        }
        defer { freeaddrinfo(list) }
        var results: [ResolvedAddress] = []
        var node = list
        while let entry = node?.pointee {
            if let address = entry.ai_addr {
                // SAFETY: getaddrinfo gives ai_addrlen valid bytes at ai_addr.
                let bytes = Array(UnsafeRawBufferPointer(start: address, count: Int(entry.ai_addrlen)))
                results.append(ResolvedAddress(family: entry.ai_family, type: entry.ai_socktype,
                                               proto: entry.ai_protocol, address: bytes, length: entry.ai_addrlen))
            }
            node = entry.ai_next
        }
        // Listening on all addresses: prefer IPv6 (dual-stack) when offered, as QEMU does.
        if passive && host == nil { results.sort { $0.family == AF_INET6 && $1.family != AF_INET6 } }
        return results
    }

    /// Non-blocking connect bounded by `connectTimeoutSeconds`; returns a blocking socket.
    private static func connectWithTimeout(_ candidate: ResolvedAddress) throws -> Int32 {
        let fd = socket(candidate.family, candidate.type | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), candidate.proto)
        guard fd >= 0 else { throw MigrationError.io(operation: "socket", errno: errno) }
        let started = candidate.address.withUnsafeBytes {
            Glibc.connect(fd, $0.baseAddress!.assumingMemoryBound(to: sockaddr.self), candidate.length)
        }
        var failure: Int32 = 0
        if started != 0 {
            if errno == EINPROGRESS {
                var entry = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
                var ready: Int32
                repeat { ready = poll(&entry, 1, Int32(TransportLimits.connectTimeoutSeconds * 1000)) } while ready < 0 && errno == EINTR
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
            throw MigrationError.io(operation: "connect", errno: failure)
        }
        let flags = fcntl(fd, F_GETFL)
        _ = fcntl(fd, F_SETFL, flags & ~O_NONBLOCK)
        return fd
    }

    private static func unixAddress(_ path: String) -> sockaddr_un {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            let bytes = Array(path.utf8.prefix(raw.count - 1))
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
        }
        return address
    }
}
