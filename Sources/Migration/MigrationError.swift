import Glibc
import SystemSupport

/// Everything that can make a migration fail, worded for the person who started it.
public enum MigrationError: Error, Equatable, CustomStringConvertible, WrappingError, ErrnoCarrying {
    case invalidURI(String)
    case addressNotFound(host: String, port: String, reason: String)
    case connectFailed(uri: String, errno: Int32)
    case listenFailed(uri: String, errno: Int32)
    case acceptFailed(errno: Int32)
    /// A socket call failed; `operation` says what we were doing.
    case io(operation: String, errno: Int32)
    case timedOut(operation: String, seconds: Int)
    /// The other side closed the connection; `during` says what we were doing.
    case peerClosed(during: String)
    case notAMigrationStream
    case newerVersion(stream: StreamVersion, supported: StreamVersion)
    case layoutMismatch(String)
    /// The stream broke a rule of the format (bad tag, out-of-range index or size).
    case malformedStream(String)
    case digestMismatch(sent: UInt64, computed: UInt64)
    /// The stream ended without delivering every page of guest RAM.
    case incompleteRAM(missingPages: Int, firstMissingAddress: UInt64)
    /// The destination refused or failed and told us why.
    case destinationFailed(String)
    /// A call into the machine failed; `action` says which, `cause` is the machine's error
    /// (a `MachineError`, which may hold the failed KVM call and its errno).
    case machine(action: String, cause: ErrorCause)
    /// A state section is larger than the stream format allows (or its name is not 1...255 bytes).
    case stateSectionTooLarge(name: String, bytes: Int)
    case alreadyInProgress
    case cancelled
    /// A snapshot file could not be opened, written or put in place.
    case snapshotFile(path: String, action: String, errno: Int32)
    /// A snapshot file ends before the stream does (a save that never finished, a copy cut short).
    case snapshotTruncated(path: String, during: String)
    case notASnapshot(path: String)
    /// A mapped-ram snapshot whose header, metadata or pages do not check out.
    case snapshotCorrupt(path: String, what: String)
    /// Capabilities and a URI that do not go together (mapped-ram without file:, ...).
    case unsupportedCombination(String)
    /// A compressed RAM batch (stream 1.5) whose frame is not exactly its pages.
    case corruptCompressedBatch(batch: String, reason: String)
    /// libzstd could not set up (out of memory).
    case compressionUnavailable(String)
    /// The TLS layer failed (a certificate, a key, a peer that does not speak TLS).
    case tls(during: String, reason: String)
    /// `tls-creds` and friends do not fit this migration (a missing object, the wrong endpoint).
    case tlsSetup(String)
    /// The destination's tls-authz does not let this source's identity in.
    case tlsRefused(String)
    /// The destination has tls-creds, the source sent a plain stream.
    case tlsRequired(credentials: String)
    /// The source started TLS, the destination has no tls-creds.
    case tlsNotExpected
    /// Postcopy commands used at the wrong moment, in QEMU's words.
    case postcopyNotEnabled
    case postcopyNotRunning
    case postcopyPausedByUser
    case pauseOutsidePostcopy
    case resumeWithoutPausedMigration
    case recoverOutsidePostcopyPause
    /// A recovery connection for another migration than the one this destination waits for.
    case postcopyWrongMigration(expected: UInt64, got: UInt64)
    /// userfaultfd or a page placement failed on the destination: the guest cannot go on.
    case postcopyFaults(String)

    /// Why postcopy and TLS are refused together, on both sides.
    static let postcopyOverTLS = "postcopy-ram does not work with tls-creds yet (postcopy reads and writes the connection from two threads at once, and its recovery connection is not secured); turn one of them off"

    public var description: String {
        switch self {
        case .invalidURI(let uri):
            return "migrate: invalid URI '\(uri)' (expected tcp:HOST:PORT, unix:PATH, exec:COMMAND or file:PATH; stdio only with -incoming)"
        case .addressNotFound(let host, let port, let reason):
            return "migrate: cannot resolve '\(host):\(port)': \(reason)"
        case .connectFailed(let uri, let err):
            return "migrate: failed to connect to \(uri): \(Errno.text(err))"
        case .listenFailed(let uri, let err):
            return "migrate: cannot listen on \(uri): \(Errno.text(err))"
        case .acceptFailed(let err):
            return "migrate: accepting the incoming connection failed: \(Errno.text(err))"
        case .io(let operation, let err):
            return "migration stream: \(operation) failed: \(Errno.text(err))"
        case .timedOut(let operation, let seconds):
            return "migration stream: \(operation) made no progress for \(seconds) s; is the other side stuck?"
        case .peerClosed(let during):
            return "migration stream: the other side closed the connection while \(during)"
        case .notAMigrationStream:
            return "migration stream: not a swiftkvm migration stream (bad magic)"
        case .newerVersion(let stream, let supported):
            return "migration stream: format version \(stream) is newer than this swiftkvm supports (\(supported)); upgrade the destination"
        case .layoutMismatch(let what):
            return "migration refused: \(what)"
        case .malformedStream(let what):
            return "migration stream is corrupt: \(what)"
        case .digestMismatch(let sent, let computed):
            let hex = { (v: UInt64) in "0x" + String(v, radix: 16) }
            return "migration stream is corrupt: digest mismatch (sent \(hex(sent)), received data hashes to \(hex(computed))); the guest was not resumed"
        case .incompleteRAM(let missing, let first):
            return "migration stream is incomplete: \(missing) pages of guest RAM never arrived (the first at guest-physical 0x\(String(first, radix: 16))); the guest was not started"
        case .destinationFailed(let reason):
            return "destination: \(reason)"
        case .machine(let action, let cause):
            return "could not \(action): \(cause)"
        case .stateSectionTooLarge(let name, let bytes):
            return "could not send state section '\(name)': it is \(bytes) bytes; the stream allows \(StreamFormat.maxSectionBytes)"
        case .alreadyInProgress:
            return "There's a migration process in progress"
        case .cancelled:
            return "migration cancelled"
        case .snapshotFile(let path, let action, let err):
            return "snapshot: cannot \(action) \(path): \(Errno.text(err))"
        case .snapshotTruncated(let path, let during):
            return "snapshot \(path) is incomplete: the file ends while \(during)"
        case .notASnapshot(let path):
            return "\(path) is not a swiftkvm snapshot (it does not start with a migration stream header)"
        case .snapshotCorrupt(let path, let what):
            return "snapshot \(path) is corrupt: \(what); the guest was not started"
        case .corruptCompressedBatch(let batch, let reason):
            return "migration stream is corrupt: the compressed RAM batch for \(batch) was refused: \(reason)"
        case .compressionUnavailable(let reason):
            return "migration compression: \(reason)"
        case .unsupportedCombination(let what):
            return what
        case .tls(let during, let reason):
            return "migration stream: \(during) failed: \(reason)"
        case .tlsSetup(let reason):
            return "migrate: \(reason)"
        case .tlsRefused(let reason):
            return "migration refused: \(reason)"
        case .tlsRequired(let credentials):
            return "migration refused: this destination requires TLS (tls-creds '\(credentials)'), but the source sent a plain stream; set tls-creds on the source too"
        case .tlsNotExpected:
            return "migration refused: the source started TLS, but this destination has no tls-creds; set tls-creds on both sides (or on neither)"
        case .postcopyNotEnabled:
            return "Enable postcopy with migrate_set_capability before the start of migration"
        case .postcopyNotRunning:
            return "Postcopy must be started after migration has been started"
        case .postcopyPausedByUser:
            return "paused by migrate_pause"
        case .pauseOutsidePostcopy:
            return "migrate-pause is currently only supported during postcopy-active state"
        case .resumeWithoutPausedMigration:
            return "Cannot resume if there is no paused migration"
        case .recoverOutsidePostcopyPause:
            return "Migrate recover can only be run when postcopy is paused."
        case .postcopyWrongMigration(let expected, let got):
            return "the recovering source resumes migration \(String(got, radix: 16)); this destination waits for \(String(expected, radix: 16))"
        case .postcopyFaults(let reason):
            return "postcopy cannot fetch missing pages: \(reason)"
        }
    }

    /// Wraps what the machine threw while the migration tried to `action`.
    static func machine(_ action: String, _ error: any Error) -> MigrationError {
        .machine(action: action, cause: ErrorCause(error))
    }

    public var underlying: (any Error)? {
        if case .machine(_, let cause) = self { return cause.error }
        return nil
    }

    public var errnoCode: Int32? {
        switch self {
        case .connectFailed(_, let code), .listenFailed(_, let code), .acceptFailed(let code),
             .io(_, let code), .snapshotFile(_, _, let code):
            return code
        default:
            return nil
        }
    }
}
