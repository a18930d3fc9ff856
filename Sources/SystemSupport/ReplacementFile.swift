import CSystemSupport
import Glibc

/// Writes a host file that replaces `path` only once it is complete: the bytes go into a
/// temporary file next to the target (mode 0600: what swiftkvm writes this way holds guest
/// memory), and `commit` fsyncs it, renames it over the target and fsyncs the directory. A
/// failed or abandoned write (`discard`, or deinit) removes the temporary file and leaves
/// whatever the target held before. Targets that are not regular files (`/dev/null`, a
/// FIFO) are written in place. Snapshot files and the monitor's memory saves both use it.
public final class ReplacementFile {
    /// What failed, with errno; callers word it for their own kind of file.
    public struct Failure: Error, Equatable {
        public enum Step: Equatable, Sendable { case open, create, write, rename }
        public var step: Step
        public var errno: Int32
    }

    public let path: String
    /// Where the bytes go until `commit`; equal to `path` when written in place.
    private let writingPath: String
    /// The descriptor to write to; -1 after `commit` or `discard`.
    public private(set) var fd: Int32

    private init(path: String, writingPath: String, fd: Int32) {
        self.path = path; self.writingPath = writingPath; self.fd = fd
    }

    deinit { discard() }

    /// Creates the temporary file next to `path`: `.PREFIX-` and six characters mkstemp picks.
    public static func create(path: String, prefix: String) throws -> ReplacementFile {
        var info = stat()
        if stat(path, &info) == 0 && (info.st_mode & S_IFMT) != S_IFREG {
            let fd = open(path, O_WRONLY | O_CLOEXEC)
            guard fd >= 0 else { throw Failure(step: .open, errno: errno) }
            return ReplacementFile(path: path, writingPath: path, fd: fd)
        }
        // mkstemp replaces the six trailing placeholder characters with a unique suffix.
        let placeholder = String(repeating: "X", count: 6)
        var template = Array((directory(of: path) + "/." + prefix + "-" + placeholder).utf8CString)
        // SAFETY: the template is a non-empty, NUL-terminated buffer that mkstemp edits in place.
        let fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        guard fd >= 0 else { throw Failure(step: .create, errno: errno) }
        _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        return ReplacementFile(path: path, writingPath: String(cString: template), fd: fd)
    }

    /// Writes all of `bytes` at the current offset, retrying short writes and EINTR.
    public func write(_ bytes: UnsafeRawBufferPointer) throws {
        var offset = 0
        while offset < bytes.count {
            // SAFETY: base + offset stays within the buffer, for the bytes that remain.
            let written = Errno.retryingInterrupted { Glibc.write(fd, bytes.baseAddress! + offset, bytes.count - offset) }
            if written < 0 { throw Failure(step: .write, errno: errno) }
            offset += written
        }
    }

    /// Writes all of `bytes` at `offset` (a file with fixed places, as mapped-ram snapshots are).
    public func write(_ bytes: UnsafeRawBufferPointer, at offset: Int) throws {
        var done = 0
        while done < bytes.count {
            // SAFETY: base + done stays within the buffer, for the bytes that remain.
            let written = Errno.retryingInterrupted { pwrite(fd, bytes.baseAddress! + done, bytes.count - done, off_t(offset + done)) }
            if written < 0 { throw Failure(step: .write, errno: errno) }
            done += written
        }
    }

    /// Makes `length` bytes at `offset` read as zero again, freeing their blocks where the
    /// file system can punch holes, writing zeros where it cannot.
    public func zero(at offset: Int, length: Int) throws {
        if csystem_punch_hole(fd, Int64(offset), Int64(length)) == 0 { return }
        let zeros = [UInt8](repeating: 0, count: length)
        try zeros.withUnsafeBytes { try write($0, at: offset) }
    }

    /// Sets the file's size; growing it leaves a hole that reads as zero and takes no room.
    public func resize(to size: Int) throws {
        guard ftruncate(fd, off_t(size)) == 0 else { throw Failure(step: .write, errno: errno) }
    }

    /// Whether the bytes go into a regular file (not a device or FIFO written in place).
    public var isRegularFile: Bool {
        var info = stat()
        return fstat(fd, &info) == 0 && (info.st_mode & S_IFMT) == S_IFREG
    }

    /// Makes the file durable under its name: fsync, rename over the target, fsync the
    /// directory so the rename itself survives a crash.
    public func commit() throws {
        guard fd >= 0 else { return }
        if fsync(fd) != 0 && errno != EINVAL && errno != EROFS {
            throw Failure(step: .write, errno: errno)
        }
        let closed = close(fd)
        let closeError = errno
        fd = -1
        guard closed == 0 || closeError == EINTR else {
            if writingPath != path { unlink(writingPath) }
            throw Failure(step: .write, errno: closeError)
        }
        guard writingPath != path else { return }
        guard rename(writingPath, path) == 0 else {
            let err = errno
            unlink(writingPath)
            throw Failure(step: .rename, errno: err)
        }
        let directoryFD = open(Self.directory(of: path), O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if directoryFD >= 0 {
            // Best effort: the data itself is already on disk.
            _ = fsync(directoryFD)
            close(directoryFD)
        }
    }

    /// Drops an unfinished file; the target keeps whatever it held before.
    public func discard() {
        guard fd >= 0 else { return }
        close(fd)
        fd = -1
        if writingPath != path { unlink(writingPath) }
    }

    private static func directory(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        let directory = String(path[..<slash])
        return directory.isEmpty ? "/" : directory
    }
}

extension ReplacementFile.Failure: ErrnoCarrying {
    public var errnoCode: Int32? { errno }
}
