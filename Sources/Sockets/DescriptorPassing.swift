import Glibc

/// File descriptors carried over a unix socket (SCM_RIGHTS): a same-host migration hands the
/// guest's memfd to the destination this way instead of its pages. Each call is one
/// sendmsg/recvmsg; retrying on EINTR and finishing short transfers is the caller's (the
/// migration stream's) business, as for its other socket calls.
public enum DescriptorPassing {
    /// The control buffer: the header (16 bytes on 64-bit Linux) and room for this many
    /// descriptors, rounded up to 8 bytes.
    public static let maxDescriptors = 4
    private static let headerBytes = MemoryLayout<cmsghdr>.size
    private static let controlBytes = headerBytes + (maxDescriptors * 4 + 7) / 8 * 8

    /// Sends up to `count` bytes with `descriptor` attached to the first of them; returns
    /// what sendmsg returns (the bytes sent, or -1 with errno).
    public static func send(_ socket: Int32, _ bytes: UnsafeRawPointer, count: Int, descriptor: Int32, flags: Int32) -> Int {
        var control = [UInt8](repeating: 0, count: headerBytes + 8)
        var vector = iovec(iov_base: UnsafeMutableRawPointer(mutating: bytes), iov_len: count)
        return control.withUnsafeMutableBytes { raw in
            // SAFETY: the buffer holds one cmsghdr plus 8 bytes, room for the one descriptor.
            raw.storeBytes(of: headerBytes + 4, toByteOffset: 0, as: Int.self)
            raw.storeBytes(of: SOL_SOCKET, toByteOffset: 8, as: Int32.self)
            raw.storeBytes(of: Int32(SCM_RIGHTS), toByteOffset: 12, as: Int32.self)
            raw.storeBytes(of: descriptor, toByteOffset: headerBytes, as: Int32.self)
            var header = msghdr()
            return withUnsafeMutablePointer(to: &vector) { vectorPointer in
                header.msg_iov = vectorPointer
                header.msg_iovlen = 1
                header.msg_control = raw.baseAddress
                header.msg_controllen = raw.count
                return sendmsg(socket, &header, flags)
            }
        }
    }

    /// Receives up to `count` bytes like recv, and any descriptors that came with them
    /// (close-on-exec). Returns recvmsg's result; descriptors beyond `maxDescriptors` are
    /// closed by the kernel (MSG_CTRUNC).
    public static func receive(_ socket: Int32, into buffer: UnsafeMutableRawPointer, count: Int, flags: Int32,
                               descriptors: inout [Int32]) -> Int {
        var control = [UInt8](repeating: 0, count: controlBytes)
        var vector = iovec(iov_base: buffer, iov_len: count)
        return control.withUnsafeMutableBytes { raw in
            var header = msghdr()
            let n = withUnsafeMutablePointer(to: &vector) { vectorPointer -> Int in
                header.msg_iov = vectorPointer
                header.msg_iovlen = 1
                header.msg_control = raw.baseAddress
                header.msg_controllen = raw.count
                return recvmsg(socket, &header, flags | Int32(MSG_CMSG_CLOEXEC))
            }
            guard n >= 0 else { return n }
            var offset = 0
            let filled = min(header.msg_controllen, raw.count)
            while offset + headerBytes <= filled {
                // SAFETY: offset + headerBytes <= filled <= raw.count: the header lies inside the buffer.
                let length = raw.loadUnaligned(fromByteOffset: offset, as: Int.self)
                let level = raw.loadUnaligned(fromByteOffset: offset + 8, as: Int32.self)
                let type = raw.loadUnaligned(fromByteOffset: offset + 12, as: Int32.self)
                guard length >= headerBytes, offset + length <= filled else { break }
                if level == SOL_SOCKET && type == Int32(SCM_RIGHTS) {
                    for index in 0..<(length - headerBytes) / 4 {
                        descriptors.append(raw.loadUnaligned(fromByteOffset: offset + headerBytes + index * 4, as: Int32.self))
                    }
                }
                offset += (length + 7) / 8 * 8
            }
            return n
        }
    }

    /// Whether `socket` is a unix socket (the only kind that carries descriptors).
    public static func isUnixSocket(_ socket: Int32) -> Bool {
        var domain: Int32 = 0
        var size = socklen_t(MemoryLayout<Int32>.size)
        return getsockopt(socket, SOL_SOCKET, SO_DOMAIN, &domain, &size) == 0 && domain == AF_UNIX
    }
}
