import Glibc
import Machine

/// The destination side: `listen` binds (so the caller can report and show `paused
/// (inmigrate)`), `receive` takes one connection and loads the machine from it.
public final class IncomingMigration {
    public let uri: MigrationURI
    private let lock = Mutex()
    private var listener: Int32
    private var connection: MigrationSocket?
    /// `exec:` and `stdio` have no listener: their one connection exists from the start.
    private var preopened: MigrationSocket?
    private var cancelled = false

    /// The TCP port actually bound (differs from the URI's when it asked for port 0).
    public let boundPort: Int?

    private init(uri: MigrationURI, listener: Int32) {
        self.uri = uri; self.listener = listener
        boundPort = SocketConnector.boundPort(of: listener)
    }

    deinit { closeListener() }

    /// Binds and listens on `uri` (`tcp:HOST:PORT` or `unix:PATH`) and returns at once;
    /// `file:PATH` opens the snapshot now, so a missing file is reported at once. For
    /// `exec:COMMAND` it starts the command (the stream is its stdout, replies go to its
    /// stdin); for `stdio` the stream is our stdin and replies go to our stdout.
    public static func listen(uri text: String) throws -> IncomingMigration {
        let uri = try MigrationURI.parse(text)
        switch uri {
        case .exec(let command):
            let incoming = IncomingMigration(uri: uri, listener: -1)
            incoming.preopened = try CommandChannel.spawn(command, uri: uri)
            return incoming
        case .stdio:
            let incoming = IncomingMigration(uri: uri, listener: -1)
            incoming.preopened = CommandChannel.standardIO()
            return incoming
        case .file(let path):
            let incoming = IncomingMigration(uri: uri, listener: -1)
            incoming.preopened = try SnapshotFile.openForReading(path: path)
            return incoming
        case .tcp, .unix:
            return IncomingMigration(uri: uri, listener: try SocketConnector.listen(on: uri))
        }
    }

    /// Accepts one connection and receives the machine into `machine`, which must be paused.
    /// On success the guest runs (or stays paused when `resume` is false, as with `-S`). On any
    /// error it throws, the guest never ran, and the source has been told why when possible.
    @discardableResult
    public func receive(into machine: MigratableMachine, resume: Bool = true) throws -> IncomingReport {
        let (socket, ready) = try lock.withLock { () throws -> (Int32, MigrationSocket?) in
            if cancelled { throw MigrationError.cancelled }
            let fd = listener
            listener = -1
            defer { preopened = nil }
            return (fd, preopened)
        }
        let prefaulter = RAMPrefaulter(regions: machine.ramRegions)
        prefaulter.start()
        defer { prefaulter.stop() }
        let connection = try ready ?? SocketConnector.acceptOne(listener: socket)
        lock.withLock { self.connection = connection }
        defer { connection.close() }
        if lock.withLock({ cancelled }) { throw MigrationError.cancelled }
        connection.configureForBulkTransfer(timeoutSeconds: TransportLimits.incomingIdleTimeoutSeconds)
        do {
            return try StreamReceiver.receive(from: connection, into: machine, resume: resume, prefaulter: prefaulter)
        } catch let error as MigrationError {
            throw explain(error)
        }
    }

    /// Stream errors worded for a file: "the other side closed" means the file ended early.
    private func explain(_ error: MigrationError) -> MigrationError {
        guard case .file(let path) = uri else { return error }
        switch error {
        case .peerClosed(let during): return .snapshotTruncated(path: path, during: during)
        case .notAMigrationStream: return .notASnapshot(path: path)
        default: return error
        }
    }

    /// Stops waiting or receiving; `receive` throws `.cancelled`. Safe from any thread.
    public func cancel() {
        lock.withLock {
            cancelled = true
            if listener >= 0 { _ = shutdown(listener, Int32(SHUT_RDWR)) }
            connection?.shutdown()
            preopened?.shutdown()
        }
    }

    private func closeListener() {
        lock.withLock {
            if listener >= 0 { close(listener); listener = -1 }
        }
    }
}

/// What the destination received.
public struct IncomingReport: Equatable, Sendable {
    public var passes: Int
    public var normalPages: Int
    public var zeroPages: Int
    public var stateSections: Int
    /// False when the guest already runs here but the ack could not reach the source.
    public var acknowledged: Bool
    /// The guest's state on the source when switchover began.
    public var sourceState: RunState = .running
}
