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
    /// The passes before `lastPass`, oldest first (empty after pass 1).
    public var earlierPasses: [PassReport]
    /// Passes in a row, `lastPass` included, whose expected downtime fit the limit.
    public var passesWithinLimit: Int

    public init(lastPass: PassReport, guestRunning: Bool, downtimeLimitMs: UInt64,
                earlierPasses: [PassReport] = [], passesWithinLimit: Int = 0) {
        self.lastPass = lastPass; self.guestRunning = guestRunning; self.downtimeLimitMs = downtimeLimitMs
        self.earlierPasses = earlierPasses; self.passesWithinLimit = passesWithinLimit
    }
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

    /// Below this expected downtime another pass cannot win much: the fixed cost of a
    /// switchover (pausing, device state, the destination's ack) is of the same order.
    public static let downtimeFloorMs: UInt64 = 3
    /// Passes that fit the limit after which it switches over even if the dirty set still shrinks.
    public static let maxPassesWithinLimit = 8

    /// The default. QEMU's rule switches over as soon as the rest fits `downtime-limit`: on a
    /// fast link that is right after pass 1, with the whole working set still dirty (96 MiB
    /// for the dirty guest, 30+ ms of downtime). This policy never switches over above the
    /// limit either, but once under it keeps iterating while another pass still pays:
    /// - guest paused: switch over (nothing dirties);
    /// - expected downtime above the limit: iterate (as QEMU);
    /// - expected downtime at most `downtimeFloorMs`: switch over;
    /// - `maxPassesWithinLimit` passes already fit the limit: switch over;
    /// - otherwise iterate while passes shrink the dirty set (a pass shrinks it when it leaves
    ///   at most 3/4 of what the pass before left; pass 1 counts as shrinking), and switch over
    ///   once two passes in a row have not. One pass that does not shrink is often a pass
    ///   that was slowed down (the vCPU's write faults and the sender share the CPUs) while
    ///   the guest re-dirtied its whole working set; the next pass usually recovers.
    /// The cap bounds the total time spent buying downtime: each pass under the limit takes
    /// about as long as its expected downtime, so at most the cap times the limit.
    public static let shrinkingDirtySet: ConvergencePolicy = { input in
        if !input.guestRunning { return .switchover }
        let last = input.lastPass
        guard last.expectedDowntimeMs <= input.downtimeLimitMs else { return .iterate }
        if last.expectedDowntimeMs <= downtimeFloorMs { return .switchover }
        if input.passesWithinLimit >= maxPassesWithinLimit { return .switchover }
        let passes = input.earlierPasses + [last]
        var passesNotShrinking = 0
        for (before, after) in zip(passes.dropLast(), passes.dropFirst()).reversed() {
            guard after.dirtyPages * 4 > before.dirtyPages * 3 else { break }
            passesNotShrinking += 1
        }
        return passesNotShrinking >= 2 ? .switchover : .iterate
    }

    /// For snapshot files, where every page sent again makes the file bigger and downtime
    /// matters less: besides when `policy` says so, switch over as soon as a pass fails to
    /// shrink the dirty set to 3/4 of the one before, or once pre-copy has written `limit`
    /// bytes. Without this a guest that dirties memory faster than the disk takes it would
    /// fill the disk.
    public static func snapshot(_ policy: @escaping ConvergencePolicy, limit: UInt64) -> ConvergencePolicy {
        { input in
            if policy(input) == .switchover { return .switchover }
            let written = input.earlierPasses.reduce(input.lastPass.bytesSent) { $0 + $1.bytesSent }
            if written >= limit { return .switchover }
            if let before = input.earlierPasses.last, input.lastPass.dirtyPages * 4 > before.dirtyPages * 3 {
                return .switchover
            }
            return .iterate
        }
    }
}
