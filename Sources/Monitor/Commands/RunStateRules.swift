import Machine

/// What every human-monitor and QMP command may do in each run state and while an outgoing
/// migration runs, in one table. The human monitor and QMP both ask it before running a
/// command; the machine and the migration controller keep their own checks as well.
///
/// | command (HMP / QMP) | refused while |
/// | --- | --- |
/// | `migrate` / `migrate` | inmigrate; an outgoing migration runs |
/// | `system_reset` / `system_reset` | inmigrate (the stream writes RAM); finish-migrate (state is being saved) |
/// | `stop` / `stop` | inmigrate (start with `-S` to stay paused); finish-migrate |
/// | `cont` / `cont` | inmigrate; finish-migrate (and `Machine.cont`'s own rules: postmigrate without `-f`, shutdown, internal-error, guest-panicked) |
/// | `migrate_set_capability` / `migrate-set-capabilities` | an outgoing migration runs |
/// | `migrate_incoming` / `migrate-incoming` | (its own check: only after `-incoming defer`, which keeps the machine in inmigrate, and only once) |
/// | everything else: `info`/`query-*`, `help`, `quit`, `cpu`, `x`, `xp`, `memsave`, `pmemsave`, `migrate_cancel`, `migrate_set_parameter`, `object_add`/`object_del` (and `object-add`/`object-del`), `human-monitor-command` (its line is checked as HMP) | never |
///
/// Reading memory (`x`, `pmemsave`) stays allowed in every state: it changes nothing, though
/// during `inmigrate` it shows RAM as far as the stream has written it. Running states
/// (`running`, `prelaunch`, `postmigrate`, `shutdown`, `internal-error`, `guest-panicked`,
/// plain `paused`) refuse nothing here beyond the machine's own `cont` rules.
public struct RunStateRules: Sendable {
    /// What the rules look at.
    public struct Situation: Equatable, Sendable {
        public var runState: RunState
        public var outgoingMigration: Bool
        public init(runState: RunState, outgoingMigration: Bool = false) {
            self.runState = runState; self.outgoingMigration = outgoingMigration
        }
    }

    /// Why a command was refused, worded as QEMU words it where QEMU has the case.
    public enum Refusal: Error, Equatable, CustomStringConvertible {
        case waitingForIncomingMigration
        case waitingForIncomingMigrationKeepPaused
        case switchingOver
        case migrationInProgress

        public var description: String {
            switch self {
            case .waitingForIncomingMigration: return "Guest is waiting for an incoming migration"
            case .waitingForIncomingMigrationKeepPaused:
                return "Guest is waiting for an incoming migration (start swiftkvm with -S to keep the guest paused once it arrives)"
            case .switchingOver:
                return "the guest is being handed over to the migration's destination (finish-migrate); try again once the migration has ended"
            case .migrationInProgress: return "There's a migration process in progress"
            }
        }
    }

    private enum Condition {
        case inmigrate, finishMigrate, outgoingMigration

        func holds(in situation: Situation) -> Bool {
            switch self {
            case .inmigrate: return situation.runState == .paused(.inmigrate)
            case .finishMigrate: return situation.runState == .paused(.finishMigrate)
            case .outgoingMigration: return situation.outgoingMigration
            }
        }
    }

    /// Each command's refusals, checked in order; HMP names, with QMP's names mapped below.
    private static let table: [String: [(Condition, Refusal)]] = [
        "migrate": [(.inmigrate, .waitingForIncomingMigration), (.outgoingMigration, .migrationInProgress)],
        "system_reset": [(.inmigrate, .waitingForIncomingMigration), (.finishMigrate, .switchingOver)],
        "stop": [(.inmigrate, .waitingForIncomingMigrationKeepPaused), (.finishMigrate, .switchingOver)],
        "cont": [(.inmigrate, .waitingForIncomingMigration), (.finishMigrate, .switchingOver)],
        "migrate_set_capability": [(.outgoingMigration, .migrationInProgress)],
    ]

    /// QMP names whose rule is an HMP command's.
    private static let qmpNames = [
        "migrate-set-capabilities": "migrate_set_capability",
    ]

    private let situation: @Sendable () -> Situation

    public init(situation: @escaping @Sendable () -> Situation) {
        self.situation = situation
    }

    /// Throws the refusal for HMP command `name` (its canonical name, not an alias).
    public func check(command name: String) throws {
        try Self.check(name, in: situation())
    }

    /// Throws the refusal for QMP command `name`.
    public func check(qmpCommand name: String) throws {
        try Self.check(Self.qmpNames[name] ?? name, in: situation())
    }

    static func check(_ name: String, in situation: Situation) throws {
        for (condition, refusal) in table[name] ?? [] where condition.holds(in: situation) { throw refusal }
    }

    /// The names the table has rules for (tests check each exists in the command tables).
    static var ruledCommands: [String] { Array(table.keys) }
    static var ruledQMPCommands: [String] { Array(qmpNames.keys) }
}
