/// Whether the guest runs, and if not, why: the values and spellings of QEMU's `info status`.
public enum RunState: Equatable, Sendable, CustomStringConvertible {
    case running
    /// Paused; `nil` is a plain `stop` from the user.
    case paused(PauseReason?)

    public var isRunning: Bool { self == .running }

    /// As QEMU's `info status` prints it, without the `VM status: ` prefix.
    public var description: String {
        switch self {
        case .running: return "running"
        case .paused(nil): return "paused"
        case .paused(let reason?): return "paused (\(reason.rawValue))"
        }
    }
}

public enum PauseReason: String, Sendable {
    case inmigrate
    case postmigrate
    case finishMigrate = "finish-migrate"
    case prelaunch
    case shutdown
    case internalError = "internal-error"
    case guestPanicked = "guest-panicked"
}
