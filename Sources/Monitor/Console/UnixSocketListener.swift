import Glibc

/// A listening unix stream socket (`unix:PATH,server`). A stale socket file left by an
/// earlier run is replaced, as QEMU does; the file is removed again on close.
final class UnixSocketListener: ConnectionListener {
    let path: String
    let fd: Int32

    init(path: String) throws {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let limit = MemoryLayout.size(ofValue: address.sun_path) - 1
        let pathBytes = Array(path.utf8)
        guard pathBytes.count <= limit else { throw FrontendError.socketPathTooLong(path: path, limit: limit) }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            // SAFETY: the path plus its terminating zero fits: checked against `limit` above.
            raw.copyBytes(from: pathBytes)
            raw[pathBytes.count] = 0
        }

        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw FrontendError.socketFailed(operation: "socket", path: path, errno: errno) }
        unlink(path)
        let bound = withUnsafePointer(to: &address) {
            // SAFETY: sockaddr_un is a sockaddr of the length passed.
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        guard bound == 0, listen(fd, 4) == 0 else {
            let code = errno
            Glibc.close(fd)
            throw FrontendError.socketFailed(operation: bound == 0 ? "listen" : "bind", path: path, errno: code)
        }
        FileIO.setNonBlocking(fd)
        self.path = path
        self.fd = fd
    }

    var label: String { "unix:\(path)" }

    func close() {
        FileIO.close(fd)
        unlink(path)
    }
}
