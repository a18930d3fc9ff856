/// Where a migration stands, spelled as QEMU's `info migrate` and `query-migrate` spell it.
public enum MigrationStatus: Equatable, Sendable, CustomStringConvertible {
    case none
    case setup
    case active
    case cancelling
    case cancelled
    case completed
    case failed(reason: String)
    /// After a postcopy switchover: the guest runs on the destination, which fetches the
    /// pages still here.
    case postcopyActive
    /// The connection broke during postcopy: each side holds part of the guest, and both
    /// wait for `migrate_recover` / `migrate -r`.
    case postcopyPaused
    /// Reconnecting after `postcopy-paused`.
    case postcopyRecover

    /// QEMU's status word (a failure's reason is printed separately).
    public var description: String {
        switch self {
        case .none: return "none"
        case .setup: return "setup"
        case .active: return "active"
        case .cancelling: return "cancelling"
        case .cancelled: return "cancelled"
        case .completed: return "completed"
        case .failed: return "failed"
        case .postcopyActive: return "postcopy-active"
        case .postcopyPaused: return "postcopy-paused"
        case .postcopyRecover: return "postcopy-recover"
        }
    }

    /// True while a migration is under way (a new one is refused).
    public var isInProgress: Bool {
        switch self {
        case .setup, .active, .cancelling, .postcopyActive, .postcopyPaused, .postcopyRecover: return true
        default: return false
        }
    }

    /// True from the postcopy switchover until the migration completes: the guest exists in
    /// two halves, and neither cancelling nor failing can put it back on one side.
    public var isPostcopy: Bool {
        switch self {
        case .postcopyActive, .postcopyPaused, .postcopyRecover: return true
        default: return false
        }
    }
}
