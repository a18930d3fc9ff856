import Glibc
import Machine
import Sockets
import TLS
import SystemSupport

/// The process's migration state, one per process: parameters, capabilities, and the current
/// (or last) outgoing migration with its statistics. Safe to use from any thread.
public final class MigrationController: @unchecked Sendable {
    private let lock = Mutex()
    /// Serialises starting migrations; never held while `lock` is wanted by an observer.
    private let startLock = Mutex()
    private let observers = ObserverList<MigrationNotification>()
    private var currentParameters = MigrationParameters()
    private var currentCapabilities = MigrationCapabilities()
    private var job: OutgoingMigration?
    private let statistics: MigrationStatistics
    /// Decides when to switch over; replaceable for tests and experiments.
    public var convergencePolicy: ConvergencePolicy = ConvergencePolicies.shrinkingDirtySet
    /// Where warnings go (a plain stream to another machine); stderr, as QEMU's warn_report.
    public var warn: @Sendable (String) -> Void = { fputs("swiftkvm: warning: \($0)\n", stderr) }
    /// The `-object`s that `tls-creds` and `tls-authz` name.
    public let tlsObjects: TLSObjectRegistry

    public init(tlsObjects: TLSObjectRegistry = TLSObjectRegistry()) {
        self.tlsObjects = tlsObjects
        statistics = MigrationStatistics(observers: observers)
    }

    /// The destination's TLS for a source that connects to `uri` now (nil: plain), from the
    /// current parameters, as QEMU reads them when the connection arrives.
    func incomingTLS(for uri: MigrationURI) throws -> MigrationTLS? {
        try MigrationTLS.resolve(parameters, objects: tlsObjects, endpoint: .server, uri: uri)
    }

    public var parameters: MigrationParameters { lock.withLock { currentParameters } }

    public var capabilities: MigrationCapabilities { lock.withLock { currentCapabilities } }

    /// `migrate_set_parameter`, `migrate-set-parameters`: every change or none. A running
    /// migration picks the new values up at its next pass.
    public func setParameters(_ changes: [(MigrationParameter, MigrationParameterValue)]) throws {
        try lock.withLock { try currentParameters.set(changes) }
    }

    public func setParameter(_ parameter: MigrationParameter, to value: MigrationParameterValue) throws {
        try setParameters([(parameter, value)])
    }

    /// `migrate_set_capability`, `migrate-set-capabilities`: every change or none; refused
    /// while a migration runs, as in QEMU.
    public func setCapabilities(_ changes: [(MigrationCapability, Bool)]) throws {
        guard !statistics.snapshot.status.isInProgress else { throw MigrationError.alreadyInProgress }
        try lock.withLock { try currentCapabilities.set(changes) }
    }

    public func setCapability(_ capability: MigrationCapability, on: Bool) throws {
        try setCapabilities([(capability, on)])
    }

    /// Starts migrating `machine` to `uri` on a thread of its own and returns at once. Throws
    /// only for a bad URI or a migration already under way; everything later is reported
    /// through `events` (to this caller), the observers (to everyone), `stats` and
    /// `waitForCompletion()`.
    public func migrate(uri: String, machine: MigratableMachine,
                        events: @escaping (MigrationEvent) -> Void = { _ in }) throws {
        let target = try MigrationURI.parse(uri)
        try Self.check(capabilities, parameters, with: target)
        let tls = try MigrationTLS.resolve(parameters, objects: tlsObjects, endpoint: .client, uri: target)
        if tls != nil, capabilities.postcopyRAM { throw MigrationError.unsupportedCombination(MigrationError.postcopyOverTLS) }
        if tls == nil, case .tcp(let host, _) = target, !HostPort.isLoopback(host) {
            warn("migrating to \(target) without TLS: the guest's memory and state cross the network unencrypted and unauthenticated; set tls-creds (see \"Security\" in the README)")
        }
        // Observers may read `parameters` or `capabilities` while a notification is delivered,
        // so `lock` is not held while the job starts (and publishes `setup`).
        try startLock.withLock {
            guard !statistics.snapshot.status.isInProgress else { throw MigrationError.alreadyInProgress }
            let created = OutgoingMigration(
                uri: target, tls: tls, machine: machine, parameters: { [weak self] in self?.parameters ?? MigrationParameters() },
                capabilities: capabilities, policy: convergencePolicy,
                statistics: statistics, events: { [observers] event in
                    events(event)
                    observers.publish(.event(event))
                })
            lock.withLock { job = created }
            created.start()
        }
    }

    /// Refuses capabilities that cannot work over `target`, before anything starts.
    static func check(_ capabilities: MigrationCapabilities, _ parameters: MigrationParameters, with target: MigrationURI) throws {
        if case .file = target {} else if capabilities.mappedRAM {
            throw MigrationError.unsupportedCombination("mapped-ram migration needs a file: URI")
        }
        // As QEMU: mapped-ram's pages have fixed places in the file, a compressed page has none.
        if capabilities.mappedRAM && capabilities.multifd && parameters.compressesWithZstd {
            throw MigrationError.unsupportedCombination("mapped-ram is incompatible with multifd-compression zstd: set multifd-compression none")
        }
    }

    /// Hears about every outgoing migration from now on, whoever started it: status changes
    /// and events, in order, on the migration's (or a cancelling caller's) thread. Keep
    /// `observer` short and do not start or cancel migrations from it.
    @discardableResult
    public func addObserver(_ observer: @escaping @Sendable (MigrationNotification) -> Void) -> ObserverToken {
        observers.add(observer)
    }

    public func removeObserver(_ token: ObserverToken) {
        observers.remove(token)
    }

    /// `migrate_start_postcopy`, `migrate-start-postcopy`: the running migration switches to
    /// postcopy at the end of its current pass.
    public func startPostcopy() throws {
        guard capabilities.postcopyRAM else { throw MigrationError.postcopyNotEnabled }
        guard let current = lock.withLock({ job }), statistics.snapshot.status == .active else {
            throw MigrationError.postcopyNotRunning
        }
        try current.startPostcopy()
    }

    /// `migrate_pause` on the source: cuts an active postcopy's connection on purpose.
    public func pausePostcopy() throws {
        guard let current = lock.withLock({ job }) else { throw MigrationError.pauseOutsidePostcopy }
        try current.pausePostcopy()
    }

    /// `migrate -r URI`: resumes a paused postcopy over a new connection.
    public func resumePostcopy(uri: String) throws {
        let target = try MigrationURI.parse(uri)
        guard let current = lock.withLock({ job }) else { throw MigrationError.resumeWithoutPausedMigration }
        try current.resumePostcopy(to: target)
    }

    /// The destination's statistics during postcopy (`info migrate` there), published to the
    /// same observers (QMP's MIGRATION events).
    var incomingStatistics: MigrationStatistics { statistics }

    /// `migrate_cancel`: the source guest keeps running. Does nothing when no migration runs.
    public func cancel() {
        lock.withLock { job }?.cancel()
    }

    public var stats: MigrationStats { statistics.snapshot }

    /// Blocks until the current migration ends and returns how it ended (`.none` if none ran).
    @discardableResult
    public func waitForCompletion() -> MigrationStatus {
        guard let current = lock.withLock({ job }) else { return .none }
        return current.waitForCompletion()
    }
}
