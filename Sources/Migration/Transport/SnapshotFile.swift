import Glibc

/// The source's link for `file:` (FileTransport): a migration stream kept in a file.
///
/// Saving writes into a temporary file next to the target and renames it over the target only
/// once every byte is on disk, so a failed or cancelled save never destroys an earlier
/// snapshot of the same name and never leaves a half-written one behind. Targets that are not
/// regular files (`/dev/null`, a FIFO) are written in place.
final class SnapshotFile: OutgoingLink {
    let path: String
    /// Where the bytes go until `commit`; equal to `path` when written in place.
    private let writingPath: String
    private var fd: Int32
    /// The stream's side of the file: writes only, and no input ever arrives on it.
    let stream: MigrationStream

    private init(path: String, writingPath: String, fd: Int32) {
        self.path = path; self.writingPath = writingPath; self.fd = fd
        stream = MigrationStream(readFD: -1, writeFD: fcntl(fd, F_DUPFD_CLOEXEC, 3))
    }

    deinit { discard() }

    /// Creates the temporary file (mode 0600: it holds all of guest memory).
    static func create(path: String) throws -> SnapshotFile {
        var info = stat()
        if stat(path, &info) == 0 && (info.st_mode & S_IFMT) != S_IFREG {
            let fd = open(path, O_WRONLY | O_CLOEXEC)
            guard fd >= 0 else { throw MigrationError.snapshotFile(path: path, action: "open", errno: errno) }
            return SnapshotFile(path: path, writingPath: path, fd: fd)
        }
        // mkstemp replaces the six trailing placeholder characters with a unique suffix.
        let placeholder = String(repeating: "X", count: 6)
        var template = Array((directory(of: path) + "/.swiftkvm-snapshot-" + placeholder).utf8CString)
        // SAFETY: the template is a non-empty, NUL-terminated buffer that mkstemp edits in place.
        let fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        guard fd >= 0 else { throw MigrationError.snapshotFile(path: path, action: "create a file next to", errno: errno) }
        _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        let writingPath = String(cString: template)
        return SnapshotFile(path: path, writingPath: writingPath, fd: fd)
    }

    /// Makes the snapshot durable under its name: fsync, rename over the target, fsync the
    /// directory so the rename itself survives a crash.
    func commit() throws {
        guard fd >= 0 else { return }
        if fsync(fd) != 0 && errno != EINVAL && errno != EROFS {
            throw MigrationError.snapshotFile(path: path, action: "write", errno: errno)
        }
        close(fd)
        fd = -1
        guard writingPath != path else { return }
        guard rename(writingPath, path) == 0 else {
            let err = errno
            unlink(writingPath)
            throw MigrationError.snapshotFile(path: path, action: "rename the finished snapshot to", errno: err)
        }
        let directoryFD = open(Self.directory(of: path), O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if directoryFD >= 0 {
            // Best effort: the data itself is already on disk.
            _ = fsync(directoryFD)
            close(directoryFD)
        }
    }

    /// Drops an unfinished snapshot; the target keeps whatever it held before.
    func discard() {
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
