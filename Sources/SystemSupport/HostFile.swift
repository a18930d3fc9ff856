import Glibc

/// Reading whole host files (guest images) without Foundation.
public enum HostFile {
    public enum ReadError: Error, Equatable, CustomStringConvertible {
        case cannotOpen(errno: Int32)
        case tooLarge(size: Int, limit: Int)
        case readFailed(errno: Int32)

        public var description: String {
            switch self {
            case .cannotOpen(let code), .readFailed(let code): return Errno.text(code)
            case .tooLarge(let size, let limit): return "\(size) bytes is larger than the \(limit >> 20) MiB limit"
            }
        }
    }

    /// The file's bytes, refusing files over `limit` bytes before reading them.
    public static func readAll(_ path: String, limit: Int) throws -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw ReadError.cannotOpen(errno: errno) }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw ReadError.readFailed(errno: errno) }
        if (st.st_mode & S_IFMT) == S_IFDIR { throw ReadError.readFailed(errno: EISDIR) }
        guard st.st_size <= limit else { throw ReadError.tooLarge(size: Int(st.st_size), limit: limit) }
        var bytes = [UInt8](repeating: 0, count: Int(st.st_size))
        var done = 0
        while done < bytes.count {
            // SAFETY: reads into the array's own storage, within its count.
            let n = bytes.withUnsafeMutableBytes { raw in
                Errno.retryingInterrupted { read(fd, raw.baseAddress! + done, raw.count - done) }
            }
            if n < 0 { throw ReadError.readFailed(errno: errno) }
            if n == 0 { bytes.removeLast(bytes.count - done); break }
            done += n
        }
        return bytes
    }
}

extension HostFile.ReadError: ErrnoCarrying {
    public var errnoCode: Int32? {
        switch self {
        case .cannotOpen(let code), .readFailed(let code): return code
        case .tooLarge: return nil
        }
    }
}
