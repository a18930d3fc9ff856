import SystemSupport

/// How a migration travels: one conforming type per URI scheme (TCPTransport, UnixTransport,
/// ExecTransport, StdioTransport, FileTransport), each saying how the source reaches the
/// stream (`connect`), how the destination waits for it (`listen`, then `accept`), whether
/// the destination can answer on it (`hasReturnPath`), and how the source knows the
/// migration is safe (`OutgoingLink.commit`: a socket waits for the destination's
/// acknowledgement, a file is fsynced and renamed into place). Everything above works on
/// `MigrationStream`, whatever the scheme.
///
/// Adding a transport is one new file with a type conforming to `MigrationTransport`, and
/// one line in `MigrationURI.transport` (plus its case and spelling in MigrationURI.swift):
/// - `tls:` over TCP: a `TLSTransport` wrapping `TCPTransport`: `connect` and `accept` run
///   the handshake on the connected socket, then hand out a `MigrationStream` over the TLS
///   session (or, with kernel TLS, the same socket after `setsockopt(SOL_TLS)`).
/// - fd passing (QEMU's `fd:NAME`): an `FDTransport` whose `listen`/`connect` wrap a
///   descriptor received earlier (SCM_RIGHTS on the monitor socket) in a `PreopenedEndpoint`
///   or an `AcknowledgedLink`.
/// - a second channel (multifd, a postcopy return path): a transport whose link opens more
///   streams after the first; `OutgoingLink` and `IncomingEndpoint` are the only places
///   that know how many streams a migration has.
protocol MigrationTransport {
    /// Whether the destination answers on the stream (its acknowledgement, or why it refused).
    var hasReturnPath: Bool { get }
    /// The source's side: opens the stream to the destination.
    func connect() throws -> OutgoingLink
    /// The destination's side: binds, spawns or opens now (so errors surface at start-up)
    /// and returns at once; the stream comes from the endpoint's `accept`.
    func listen() throws -> IncomingEndpoint
    /// Words a stream error for this transport as the destination reports it.
    func explainIncoming(_ error: MigrationError) -> MigrationError
    /// Words a stream error for this transport as the source reports it.
    func explainOutgoing(_ error: MigrationError) -> MigrationError
}

extension MigrationTransport {
    var hasReturnPath: Bool { true }
    func explainIncoming(_ error: MigrationError) -> MigrationError { error }
    func explainOutgoing(_ error: MigrationError) -> MigrationError { error }
}

/// The source's end of one migration.
protocol OutgoingLink: AnyObject {
    var stream: MigrationStream { get }
    /// After the end marker: returns once the migration is safe on the other side.
    func commit() throws
    /// Gives up an unfinished migration (an unfinished snapshot is removed). Idempotent; a
    /// no-op after `commit`.
    func discard()
}

/// The destination's wait for one migration.
protocol IncomingEndpoint: AnyObject {
    /// The TCP port actually bound (differs from the URI's when it asked for port 0).
    var boundPort: Int? { get }
    /// Blocks until the stream is there; call once. Throws `.cancelled` after `cancel`.
    func accept() throws -> MigrationStream
    /// Wakes `accept`. Safe from any thread.
    func cancel()
}

extension MigrationURI {
    /// The one place that maps a scheme to its transport.
    var transport: MigrationTransport {
        switch self {
        case .tcp(let host, let port): return TCPTransport(uri: self, host: host, port: port)
        case .unix(let path): return UnixTransport(uri: self, path: path)
        case .exec(let command): return ExecTransport(uri: self, command: command)
        case .stdio: return StdioTransport()
        case .file(let path): return FileTransport(path: path)
        }
    }
}

/// The link of every transport with a return path: committing waits for the destination's
/// acknowledgement, or its reason for refusing.
final class AcknowledgedLink: OutgoingLink {
    let stream: MigrationStream

    init(stream: MigrationStream) { self.stream = stream }

    func commit() throws {
        switch try ReturnPath.readReply(from: stream) {
        case .ack: return
        case .error(let message): throw MigrationError.destinationFailed(message)
        }
    }

    func discard() {}
}

/// An endpoint whose one stream exists from the start (`exec:`, `stdio`, `file:`).
final class PreopenedEndpoint: IncomingEndpoint {
    private let lock = Mutex()
    private var stream: MigrationStream?
    private var cancelled = false

    init(stream: MigrationStream) { self.stream = stream }

    var boundPort: Int? { nil }

    func accept() throws -> MigrationStream {
        try lock.withLock {
            guard !cancelled, let stream else { throw MigrationError.cancelled }
            self.stream = nil
            return stream
        }
    }

    func cancel() {
        lock.withLock {
            cancelled = true
            stream?.shutdown()
        }
    }
}
