import Machine

/// The process's migration state, one per process: parameters, capabilities, and the current
/// (or last) outgoing migration with its statistics. Safe to use from any thread.
public final class MigrationController: @unchecked Sendable {
    private let lock = Mutex()
    private var currentParameters = MigrationParameters()
    private var currentCapabilities = MigrationCapabilities()
    private var job: OutgoingMigration?
    private let statistics = MigrationStatistics()
    /// Decides when to switch over; replaceable for tests and experiments.
    public var convergencePolicy: ConvergencePolicy = ConvergencePolicies.shrinkingDirtySet

    public init() {}

    public var parameters: MigrationParameters {
        get { lock.withLock { currentParameters } }
        set { lock.withLock { currentParameters = newValue } }
    }

    public var capabilities: MigrationCapabilities {
        get { lock.withLock { currentCapabilities } }
        set { lock.withLock { currentCapabilities = newValue } }
    }

    /// `migrate_set_parameter NAME VALUE`; a running migration picks the change up at its
    /// next pass.
    public func setParameter(_ name: String, value: String) throws {
        try lock.withLock { try currentParameters.set(name: name, value: value) }
    }

    /// `migrate_set_capability NAME on|off`; refused while a migration runs, as in QEMU.
    public func setCapability(_ name: String, on: Bool) throws {
        guard !statistics.snapshot.status.isInProgress else { throw MigrationError.alreadyInProgress }
        try lock.withLock { try currentCapabilities.set(name: name, on: on) }
    }

    /// Starts migrating `machine` to `uri` on a thread of its own and returns at once. Throws
    /// only for a bad URI or a migration already under way; everything later is reported
    /// through `events`, `stats` and `waitForCompletion()`.
    public func migrate(uri: String, machine: MigratableMachine,
                        events: @escaping (MigrationEvent) -> Void = { _ in }) throws {
        let target = try MigrationURI.parse(uri)
        let newJob: OutgoingMigration = try lock.withLock {
            guard !statistics.snapshot.status.isInProgress else { throw MigrationError.alreadyInProgress }
            let created = OutgoingMigration(
                uri: target, machine: machine, parameters: { [weak self] in self?.parameters ?? MigrationParameters() },
                capabilities: currentCapabilities, policy: convergencePolicy,
                statistics: statistics, events: events)
            job = created
            created.start()
            return created
        }
        _ = newJob
    }

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

    /// `info migrate` (empty before the first migration, as in QEMU).
    public func formatInfoMigrate() -> String { stats.formatInfo() }
    public func formatInfoParameters() -> String { parameters.formatInfo() }
    public func formatInfoCapabilities() -> String { capabilities.formatInfo() }
}
