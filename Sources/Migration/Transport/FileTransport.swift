import Glibc

/// `file:PATH`: a snapshot. No destination reads the stream as it is written, so there is no
/// return path: committing is the file safely on disk under its name (SnapshotFile).
struct FileTransport: MigrationTransport {
    let path: String

    var hasReturnPath: Bool { false }

    func connect() throws -> OutgoingLink {
        try SnapshotFile.create(path: path)
    }

    /// Opens the snapshot now, so a missing file is reported at start-up. A mapped-ram file
    /// (by its magic) is restored by mapping it, anything else is read as a stream.
    func listen() throws -> IncomingEndpoint {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw MigrationError.snapshotFile(path: path, action: "open", errno: errno) }
        var info = stat()
        if fstat(fd, &info) == 0 && (info.st_mode & S_IFMT) == S_IFDIR {
            close(fd)
            throw MigrationError.snapshotFile(path: path, action: "read", errno: EISDIR)
        }
        if MappedRAMRestore.isMappedRAM(fd) { return MappedRAMEndpoint(fd: fd, path: path) }
        return PreopenedEndpoint(stream: MigrationStream(readFD: fd, writeFD: -1))
    }

    /// "The other side closed" means the file ended early.
    func explainIncoming(_ error: MigrationError) -> MigrationError {
        switch error {
        case .peerClosed(let during): return .snapshotTruncated(path: path, during: during)
        case .notAMigrationStream: return .notASnapshot(path: path)
        default: return error
        }
    }

    /// Writing a file fails for reasons of the file (a full disk), not of a peer.
    func explainOutgoing(_ error: MigrationError) -> MigrationError {
        if case .io(_, let code) = error { return .snapshotFile(path: path, action: "write", errno: code) }
        return error
    }
}

/// A mapped-ram snapshot, opened: IncomingMigration restores it with MappedRAMRestore
/// instead of reading a stream.
final class MappedRAMEndpoint: IncomingEndpoint {
    let fd: Int32
    let path: String

    init(fd: Int32, path: String) { self.fd = fd; self.path = path }
    deinit { close(fd) }

    var boundPort: Int? { nil }
    func accept() throws -> MigrationStream { throw MigrationError.cancelled }
    func cancel() {}
}
