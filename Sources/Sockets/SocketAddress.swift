import Glibc

/// One address getaddrinfo offered, kept as bytes so it outlives the list it came from.
struct ResolvedAddress {
    var family: Int32, type: Int32, proto: Int32
    var address: [UInt8]
    var length: socklen_t

    /// `passive` with a nil host: every local address, IPv6 (dual-stack) first as QEMU does.
    static func resolve(host: String?, port: String, passive: Bool) throws -> [ResolvedAddress] {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_family = AF_UNSPEC
        if passive { hints.ai_flags = AI_PASSIVE }
        var list: UnsafeMutablePointer<addrinfo>?
        let status = getaddrinfo(host, port, &hints, &list)
        guard status == 0 else {
            throw SocketError.unresolved(host: host ?? "*", port: port, reason: String(cString: gai_strerror(status)))
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
        if passive && host == nil { results.sort { $0.family == AF_INET6 && $1.family != AF_INET6 } }
        return results
    }

    func withSockaddr<T>(_ body: (UnsafePointer<sockaddr>, socklen_t) -> T) -> T {
        address.withUnsafeBytes {
            // SAFETY: the bytes are a sockaddr of `length` bytes, copied from getaddrinfo.
            body($0.baseAddress!.assumingMemoryBound(to: sockaddr.self), length)
        }
    }
}

enum UnixAddress {
    static func make(_ path: String) throws -> sockaddr_un {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count <= SocketEndpoint.maxUnixPathBytes else {
            throw SocketError.pathTooLong(path: path, limit: SocketEndpoint.maxUnixPathBytes)
        }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            // SAFETY: the path plus its terminating zero fits: checked against the limit above.
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
        }
        return address
    }

    static func withSockaddr<T>(_ address: inout sockaddr_un, _ body: (UnsafePointer<sockaddr>, socklen_t) -> T) -> T {
        withUnsafePointer(to: &address) {
            // SAFETY: sockaddr_un is a sockaddr of the length passed.
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
    }
}

enum SocketDescriptor {
    static func open(family: Int32, type: Int32, proto: Int32) throws -> Int32 {
        let fd = socket(family, type | Int32(SOCK_CLOEXEC.rawValue), proto)
        guard fd >= 0 else { throw SocketError.system(operation: "socket", errno: errno) }
        return fd
    }

    /// The TCP port a socket is bound to (useful after asking for port 0).
    static func boundPort(_ fd: Int32) -> UInt16? {
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
}
