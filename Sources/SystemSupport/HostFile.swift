import Glibc

/// Reading whole host files (guest images) without Foundation.
public enum HostFile {
    public enum ReadError: Error, Equatable, CustomStringConvertible {
        case cannotOpen(errno: Int32)
        case tooLarge(size: Int, limit: Int)
        case readFailed(errno: Int32)
        /// A file in use (a kernel a reset reloads) is shorter now than when it was opened.
        case shrunk(size: Int, was: Int)

        public var description: String {
            switch self {
            case .cannotOpen(let code), .readFailed(let code): return Errno.text(code)
            case .tooLarge(let size, let limit): return "\(size) bytes is larger than the \(limit >> 20) MiB limit"
            case .shrunk(let size, let was): return "the file is \(size) bytes now, \(was) when swiftkvm started: it was changed while in use"
            }
        }
    }

    /// The file's bytes, refusing files over `limit` bytes before reading them.
    public static func readAll(_ path: String, limit: Int) throws -> [UInt8] {
        let contents = try FileContents(path: path, limit: limit)
        return try contents.withUnsafeBytes(0..<contents.count) { Array($0) }
    }
}

extension HostFile.ReadError: ErrnoCarrying {
    public var errnoCode: Int32? {
        switch self {
        case .cannotOpen(let code), .readFailed(let code): return code
        case .tooLarge, .shrunk: return nil
        }
    }
}

/// A host file's bytes without copying them into an array: a regular file is mapped (as
/// QEMU's loader maps kernels), anything else read once into memory of its own. A guest's
/// kernel and initrd are tens of MiB: read into arrays they cost a page fault per 4 KiB twice
/// over (the array, then its copy into guest RAM), 12,700 faults for a 14 MiB bzImage and a
/// 20 MiB initrd here, and the read's copy alone took 0.4-4.4 s for a 53 MB vmlinux in the
/// emulated host, where TCG runs the kernel's string copies slowly; mapped, the page cache's
/// pages are used as they are. A mapped file is read again at each use (a reset reloads the
/// kernel from it), so what it holds then is what the guest gets, as with QEMU; a file cut
/// shorter since the start is refused (`withUnsafeBytes`) rather than read past its end.
public final class FileContents: RandomAccessCollection {
    private let base: UnsafeMutableRawPointer?
    private let mapped: Int
    /// The open file behind a mapping, to check its size before each use.
    private let file: Int32?
    public let count: Int

    /// Opens the file at `path`, refusing files over `limit` bytes before reading them.
    public init(path: String, limit: Int) throws {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw HostFile.ReadError.cannotOpen(errno: errno) }
        var keep = false
        defer { if !keep { close(fd) } }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw HostFile.ReadError.readFailed(errno: errno) }
        if (st.st_mode & S_IFMT) == S_IFDIR { throw HostFile.ReadError.readFailed(errno: EISDIR) }
        guard st.st_size <= limit else { throw HostFile.ReadError.tooLarge(size: Int(st.st_size), limit: limit) }
        let size = Int(st.st_size)
        guard size > 0 else {
            (base, mapped, count, file) = (nil, 0, 0, nil)
            return
        }
        if (st.st_mode & S_IFMT) == S_IFREG {
            guard let p = mmap(nil, size, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, 0), p != MAP_FAILED else {
                throw HostFile.ReadError.readFailed(errno: errno)
            }
            keep = true
            (base, mapped, count, file) = (p, size, size, fd)
            return
        }
        guard let p = mmap(nil, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0), p != MAP_FAILED else {
            throw HostFile.ReadError.readFailed(errno: errno)
        }
        var done = 0
        while done < size {
            // SAFETY: reads into this mapping, within its first `size` bytes.
            let n = Errno.retryingInterrupted { read(fd, p + done, size - done) }
            if n < 0 {
                let code = errno
                munmap(p, size)
                throw HostFile.ReadError.readFailed(errno: code)
            }
            if n == 0 { break }
            done += n
        }
        (base, mapped, count, file) = (p, size, done, nil)
    }

    deinit {
        if let base { munmap(base, mapped) }
        if let file { close(file) }
    }

    public var startIndex: Int { 0 }
    public var endIndex: Int { count }

    /// For parsing right after opening; copying out goes through `withUnsafeBytes`.
    public subscript(position: Int) -> UInt8 {
        precondition(position >= 0 && position < count, "FileContents index out of range")
        // SAFETY: checked above to lie within the file's bytes, which were all there at open.
        return base.unsafelyUnwrapped.load(fromByteOffset: position, as: UInt8.self)
    }

    /// The bytes in `range` (which must lie within the contents) as one raw buffer, for
    /// copying out without an intermediate array. A mapped file must still hold every byte it
    /// held at open: touching a mapped page past a file's end would kill the process (SIGBUS).
    public func withUnsafeBytes<T>(_ range: Range<Int>, _ body: (UnsafeRawBufferPointer) throws -> T) throws -> T {
        precondition(range.lowerBound >= 0 && range.upperBound <= count, "FileContents range out of bounds")
        if let file {
            var st = stat()
            guard fstat(file, &st) == 0 else { throw HostFile.ReadError.readFailed(errno: errno) }
            guard Int(st.st_size) >= count else { throw HostFile.ReadError.shrunk(size: Int(st.st_size), was: count) }
        }
        // SAFETY: the range lies within the file's bytes (checked just now for a mapped file),
        // which stay mapped as long as `self`.
        let start = range.isEmpty ? nil : base.map { UnsafeRawPointer($0 + range.lowerBound) }
        return try body(UnsafeRawBufferPointer(start: start, count: range.count))
    }
}
