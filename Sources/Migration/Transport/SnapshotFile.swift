import Glibc
import Machine
import SystemSupport

/// The source's link for `file:` (FileTransport): a migration stream kept in a file.
///
/// Saving writes into a temporary file next to the target and renames it over the target only
/// once every byte is on disk (ReplacementFile), so a failed or cancelled save never destroys
/// an earlier snapshot of the same name and never leaves a half-written one behind. Targets
/// that are not regular files (`/dev/null`, a FIFO) are written in place.
final class SnapshotFile: OutgoingLink {
    /// Written in place by a mapped-ram save; the stream is unused then.
    let file: ReplacementFile
    var path: String { file.path }
    /// The stream's side of the file: writes only, and no input ever arrives on it.
    let stream: MigrationStream

    private init(file: ReplacementFile) {
        self.file = file
        stream = MigrationStream(readFD: -1, writeFD: fcntl(file.fd, F_DUPFD_CLOEXEC, 3))
    }

    /// Creates the temporary file (mode 0600: it holds all of guest memory).
    static func create(path: String) throws -> SnapshotFile {
        do {
            return SnapshotFile(file: try ReplacementFile.create(path: path, prefix: "swiftkvm-snapshot"))
        } catch let failure as ReplacementFile.Failure {
            throw error(failure, path: path)
        }
    }

    /// Puts the finished snapshot in place under its name, durably (see ReplacementFile).
    func commit() throws {
        do {
            try file.commit()
        } catch let failure as ReplacementFile.Failure {
            throw Self.error(failure, path: path)
        }
    }

    /// Drops an unfinished snapshot; the target keeps whatever it held before.
    func discard() { file.discard() }

    private static func error(_ failure: ReplacementFile.Failure, path: String) -> MigrationError {
        let action: String
        switch failure.step {
        case .open: action = "open"
        case .create: action = "create a file next to"
        case .write: action = "write"
        case .rename: action = "rename the finished snapshot to"
        }
        return .snapshotFile(path: path, action: action, errno: failure.errno)
    }
}
