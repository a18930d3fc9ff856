/// Decides after each pre-copy pass whether to keep iterating or to pause and switch over
/// (Cloud Hypervisor passes the same kind of function to its `do_memory_iterations`).
public enum ConvergenceDecision: Equatable, Sendable {
    case iterate
    case switchover
}

public struct ConvergenceInput: Equatable, Sendable {
    public var lastPass: PassReport
    public var guestRunning: Bool
    public var downtimeLimitMs: UInt64
}

public typealias ConvergencePolicy = (ConvergenceInput) -> ConvergenceDecision

public enum ConvergencePolicies {
    /// QEMU's rule: switch over once the pages still dirty could be sent within the downtime
    /// limit at the bandwidth just measured, or at once when the guest is not running (nothing
    /// dirties). Like QEMU it never forces a switchover: a guest that dirties faster than the
    /// link carries keeps the migration iterating until the user raises downtime-limit, turns
    /// on auto-converge or cancels.
    public static let downtimeLimit: ConvergencePolicy = { input in
        if !input.guestRunning { return .switchover }
        return input.lastPass.expectedDowntimeMs <= input.downtimeLimitMs ? .switchover : .iterate
    }
}
