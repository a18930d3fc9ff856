import Glibc

/// `file:PATH`: a snapshot. No destination reads the stream as it is written, so there is no
/// return path: committing is the file safely on disk under its name (SnapshotFile).
struct FileTransport: MigrationTransport {
    let path: String

    var hasReturnPath: Bool { false }

    func connect() throws -> OutgoingLink {
        try SnapshotFile.create(path: path)
    }

    /// Opens the snapshot now, so a missing file is reported at start-up.
    func listen() throws -> IncomingEndpoint {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw MigrationError.snapshotFile(path: path, action: "open", errno: errno) }
        var info = stat()
        if fstat(fd, &info) == 0 && (info.st_mode & S_IFMT) == S_IFDIR {
            close(fd)
            throw MigrationError.snapshotFile(path: path, action: "read", errno: EISDIR)
        }
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
