/// Where a migration stands, spelled as QEMU's `info migrate` and `query-migrate` spell it.
public enum MigrationStatus: Equatable, Sendable, CustomStringConvertible {
    case none
    case setup
    case active
    case cancelling
    case cancelled
    case completed
    case failed(reason: String)

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
        }
    }

    /// True while a migration is under way (a new one is refused).
    public var isInProgress: Bool {
        switch self {
        case .setup, .active, .cancelling: return true
        default: return false
        }
    }
}
