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

/// A host file's bytes, read once into memory of its own that the kernel may back with huge
/// pages. A guest's kernel and initrd are tens of MiB: read into an array, they cost a page
/// fault per 4 KiB twice over (the array, then its copy into guest RAM), 12,700 faults for a
/// 14 MiB bzImage and a 20 MiB initrd here and several times the start-up time under nested
/// virtualisation; here they cost a few dozen. The contents are a snapshot: what happens to
/// the file later changes nothing (a reset reloads from here).
public final class FileContents: RandomAccessCollection {
    private let base: UnsafeMutableRawPointer?
    private let mapped: Int
    public let count: Int

    /// Reads the file at `path`, refusing files over `limit` bytes before reading them.
    public init(path: String, limit: Int) throws {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw HostFile.ReadError.cannotOpen(errno: errno) }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw HostFile.ReadError.readFailed(errno: errno) }
        if (st.st_mode & S_IFMT) == S_IFDIR { throw HostFile.ReadError.readFailed(errno: EISDIR) }
        guard st.st_size <= limit else { throw HostFile.ReadError.tooLarge(size: Int(st.st_size), limit: limit) }
        let size = Int(st.st_size)
        let hugePage = 2 << 20
        mapped = (size + hugePage - 1) / hugePage * hugePage
        guard mapped > 0 else {
            base = nil
            count = 0
            return
        }
        guard let p = mmap(nil, mapped, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0), p != MAP_FAILED else {
            throw HostFile.ReadError.readFailed(errno: errno)
        }
        _ = madvise(p, mapped, MADV_HUGEPAGE)
        var done = 0
        while done < size {
            // SAFETY: reads into this mapping, within its first `size` bytes.
            let n = Errno.retryingInterrupted { read(fd, p + done, size - done) }
            if n < 0 {
                let code = errno
                munmap(p, mapped)
                throw HostFile.ReadError.readFailed(errno: code)
            }
            if n == 0 { break }
            done += n
        }
        base = p
        count = done
    }

    deinit { if let base { munmap(base, mapped) } }

    public var startIndex: Int { 0 }
    public var endIndex: Int { count }

    public subscript(position: Int) -> UInt8 {
        precondition(position >= 0 && position < count, "FileContents index out of range")
        // SAFETY: checked above to lie within the bytes read.
        return base.unsafelyUnwrapped.load(fromByteOffset: position, as: UInt8.self)
    }

    /// The bytes in `range` (which must lie within the contents) as one raw buffer, for
    /// copying out without an intermediate array.
    public func withUnsafeBytes<T>(_ range: Range<Int>, _ body: (UnsafeRawBufferPointer) throws -> T) rethrows -> T {
        precondition(range.lowerBound >= 0 && range.upperBound <= count, "FileContents range out of bounds")
        // SAFETY: the range lies within the bytes read, which live as long as `self`.
        let start = range.isEmpty ? nil : base.map { UnsafeRawPointer($0 + range.lowerBound) }
        return try body(UnsafeRawBufferPointer(start: start, count: range.count))
    }
}
