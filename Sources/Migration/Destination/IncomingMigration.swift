import Glibc
import Machine

/// The destination side: `listen` binds (so the caller can report and show `paused
/// (inmigrate)`), `receive` takes one connection and loads the machine from it.
public final class IncomingMigration {
    public let uri: MigrationURI
    private let transport: MigrationTransport
    private let endpoint: IncomingEndpoint
    /// Resolves the TLS for the connection when it arrives; nil for none.
    private let tls: () throws -> MigrationTLS?
    private let lock = Mutex()
    private var connection: MigrationStream?
    private var cancelled = false

    /// The TCP port actually bound (differs from the URI's when it asked for port 0).
    public var boundPort: Int? { endpoint.boundPort }

    private init(uri: MigrationURI, transport: MigrationTransport, endpoint: IncomingEndpoint,
                 tls: @escaping () throws -> MigrationTLS?) {
        self.uri = uri; self.transport = transport; self.endpoint = endpoint; self.tls = tls
    }

    /// Prepares to receive on `uri` and returns at once: binds and listens (`tcp:`, `unix:`),
    /// opens the snapshot (`file:`, so a missing file is reported at once), starts the
    /// command (`exec:`: the stream is its stdout, replies go to its stdin) or takes our
    /// stdin and stdout (`stdio`).
    /// With `controller`, a source is received over TLS when its `tls-creds` is set as the
    /// source connects.
    public static func listen(uri: MigrationURI, controller: MigrationController? = nil) throws -> IncomingMigration {
        let transport = uri.transport
        // A tls-creds that cannot apply to this URI is refused now, not when a source comes.
        _ = try controller?.incomingTLS(for: uri)
        return IncomingMigration(uri: uri, transport: transport, endpoint: try transport.listen(),
                                 tls: { try controller?.incomingTLS(for: uri) })
    }

    public static func listen(uri text: String, controller: MigrationController? = nil) throws -> IncomingMigration {
        try listen(uri: try MigrationURI.parse(text), controller: controller)
    }

    /// Accepts one connection and receives the machine into `machine`, which must be paused.
    /// On success the guest runs (or stays paused when `resume` is false, as with `-S`). On any
    /// error it throws, the guest never ran, and the source has been told why when possible.
    @discardableResult
    public func receive(into machine: MigratableMachine, resume: Bool = true) throws -> IncomingReport {
        if lock.withLock({ cancelled }) { throw MigrationError.cancelled }
        if let snapshot = endpoint as? MappedRAMEndpoint {
            return try MappedRAMRestore.restore(fd: snapshot.fd, path: snapshot.path, into: machine, resume: resume)
        }
        // Committing a memfd's pages ahead would allocate memory that a handoff replaces.
        let prefaulter = RAMPrefaulter(regions: machine.ramRegions)
        if machine.ramRegions.allSatisfy(\.untouchedPagesReadAsZero) { prefaulter.start() }
        defer { prefaulter.stop() }
        let connection = try endpoint.accept()
        lock.withLock { self.connection = connection }
        defer { connection.close() }
        if lock.withLock({ cancelled }) { throw MigrationError.cancelled }
        try tls()?.secureIncoming(connection)
        connection.configureForBulkTransfer(timeoutSeconds: Int(TransportLimits.incomingIdleTimeoutSeconds.rounded(.up)))
        // The per-read timeout alone would let a source that trickles a byte a minute hold
        // this machine forever.
        connection.requireProgress(withinSeconds: TransportLimits.incomingIdleTimeoutSeconds)
        do {
            return try StreamReceiver.receive(from: connection, into: machine, resume: resume, prefaulter: prefaulter)
        } catch let error as MigrationError {
            throw transport.explainIncoming(error)
        }
    }

    /// Stops waiting or receiving; `receive` throws `.cancelled`. Safe from any thread.
    public func cancel() {
        lock.withLock {
            cancelled = true
            connection?.shutdown()
        }
        endpoint.cancel()
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
    /// RAM came as the source's memfd (x-ignore-shared), not as pages.
    public var sharedRAM = false
}
