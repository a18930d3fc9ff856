import Glibc
import Machine
import SystemSupport

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
    /// Set at a postcopy switchover.
    private var postcopy: PostcopyReceiver?

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
    public func receive(into machine: MigratableMachine, resume: Bool = true, controller: MigrationController? = nil,
                        log: @escaping (String) -> Void = { _ in }) throws -> IncomingReport {
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
        let secured = try tls()
        try secured?.secureIncoming(connection)
        connection.configureForBulkTransfer(timeoutSeconds: Int(TransportLimits.incomingIdleTimeoutSeconds.rounded(.up)))
        // The per-read timeout alone would let a source that trickles a byte a minute hold
        // this machine forever.
        connection.requireProgress(withinSeconds: TransportLimits.incomingIdleTimeoutSeconds)
        do {
            let hooks = PostcopyHooks(statistics: controller?.incomingStatistics, log: log,
                                      started: { [self] receiver in lock.withLock { postcopy = receiver } },
                                      refusal: secured == nil ? nil : MigrationError.postcopyOverTLS)
            return try StreamReceiver.receive(from: connection, into: machine, resume: resume, prefaulter: prefaulter,
                                              postcopy: hooks)
        } catch let error as MigrationError {
            throw transport.explainIncoming(error)
        }
    }

    /// `migrate_recover URI`: while postcopy is paused, listens on `uri` for the source's
    /// `migrate -r` and hands the connection to the waiting receiver. Returns once listening.
    public func recover(uri text: String) throws {
        let uri = try MigrationURI.parse(text)
        guard let receiver = lock.withLock({ postcopy }), receiver.isPaused else {
            throw MigrationError.recoverOutsidePostcopyPause
        }
        let endpoint = try uri.transport.listen()
        try HostThread.detach(name: "postcopy-recover") {
            guard let stream = try? endpoint.accept() else { return }
            stream.configureForBulkTransfer(timeoutSeconds: Int(TransportLimits.incomingIdleTimeoutSeconds.rounded(.up)))
            if !receiver.offer(stream) { stream.close() }
        }
    }

    /// True once the guest ran here during a postcopy switchover.
    public var postcopyStarted: Bool { lock.withLock { postcopy != nil } }

    /// `migrate_pause` on the destination: cuts an active postcopy's connection.
    public func pausePostcopy() throws {
        guard let receiver = lock.withLock({ postcopy }), receiver.pause() else {
            throw MigrationError.pauseOutsidePostcopy
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
    /// Pages that arrived after a postcopy switchover (0 without postcopy).
    public var postcopyPages = 0
    /// The postcopy switchover record, while it is being received.
    var postcopy: (id: UInt64, missing: [[UInt64]])?
    /// The stream switched to postcopy: the guest ran here before all of RAM had arrived.
    public var wasPostcopy: Bool { postcopy != nil }
    /// RAM came as the source's memfd (x-ignore-shared), not as pages.
    public var sharedRAM = false

    public static func == (a: IncomingReport, b: IncomingReport) -> Bool {
        a.passes == b.passes && a.normalPages == b.normalPages && a.zeroPages == b.zeroPages
            && a.stateSections == b.stateSections && a.acknowledged == b.acknowledged
            && a.sourceState == b.sourceState && a.postcopyPages == b.postcopyPages
    }
}

/// What the destination does when the stream switches to postcopy: where its status goes and
/// its messages, and who learns of the receiver (for `migrate_recover` and `migrate_pause`).
struct PostcopyHooks {
    var statistics: MigrationStatistics?
    var log: (String) -> Void = { _ in }
    var started: (PostcopyReceiver) -> Void = { _ in }
    /// Why this connection may not switch to postcopy (nil: it may).
    var refusal: String?
}
