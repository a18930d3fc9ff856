import Machine

/// What an outgoing migration reports, from its own thread, as it goes.
public enum MigrationEvent: Equatable, Sendable, CustomStringConvertible {
    case passCompleted(PassReport)
    case finished(MigrationOutcome)

    /// One line for the monitor (see PassReport and MigrationOutcome).
    public var description: String {
        switch self {
        case .passCompleted(let report): return report.description
        case .finished(let outcome): return outcome.description
        }
    }
}

/// One pre-copy pass (the last one is the switchover pass, sent with the guest paused).
public struct PassReport: Equatable, Sendable, CustomStringConvertible {
    public var pass: Int
    /// Pages sent in this pass, zero pages included.
    public var pagesSent: Int
    public var zeroPages: Int
    /// Bytes this pass put on the wire (page payloads and batch headers).
    public var bytesSent: UInt64
    public var durationNs: UInt64
    /// Bytes per second over this pass, as used for the downtime estimate.
    public var bandwidth: UInt64
    /// Pages dirtied during this pass and still to send (0 after the switchover pass).
    public var dirtyPages: Int
    public var expectedDowntimeMs: UInt64
    /// True for the pass sent while the guest was paused.
    public var isSwitchover: Bool

    public init(pass: Int, pagesSent: Int, zeroPages: Int, bytesSent: UInt64, durationNs: UInt64,
                bandwidth: UInt64, dirtyPages: Int, expectedDowntimeMs: UInt64, isSwitchover: Bool) {
        self.pass = pass; self.pagesSent = pagesSent; self.zeroPages = zeroPages; self.bytesSent = bytesSent
        self.durationNs = durationNs; self.bandwidth = bandwidth; self.dirtyPages = dirtyPages
        self.expectedDowntimeMs = expectedDowntimeMs; self.isSwitchover = isSwitchover
    }

    /// `migration: pass 3: 1843 pages sent (7.2 MiB, 310 zero) in 41 ms, 176 MiB/s; 212 dirty, expected downtime 2 ms`
    /// (MiB are bytes on the wire; MiB/s is the pass's wire rate).
    public var description: String {
        let mib = Double(1 << 20)
        return "migration: pass \(pass): \(pagesSent) pages sent (\(formatFixed(Double(bytesSent) / mib, decimals: 1)) MiB, "
            + "\(zeroPages) zero) in \(durationNs / 1_000_000) ms, \(formatFixed(Double(bandwidth) / mib, decimals: 0)) MiB/s; "
            + "\(dirtyPages) dirty, expected downtime \(expectedDowntimeMs) ms"
    }
}

/// How an outgoing migration ended.
public enum MigrationOutcome: Equatable, Sendable, CustomStringConvertible {
    case completed(totalMs: UInt64, downtimeMs: UInt64, passes: Int, bytesSent: UInt64)
    /// `guestRunning`: whether the source guest runs again (it was running when migration began).
    case failed(reason: String, afterMs: UInt64, guestRunning: Bool)
    case cancelled(guestRunning: Bool)

    public var description: String {
        switch self {
        case .completed(let total, let downtime, let passes, let bytes):
            return "migration: completed in \(total) ms, downtime \(downtime) ms (\(passes) passes, \(bytes >> 20) MiB sent)"
        case .failed(let reason, let after, let running):
            return "migration: failed after \(after) ms: \(reason); \(Self.guestLine(running))"
        case .cancelled(let running):
            return "migration: cancelled; \(Self.guestLine(running))"
        }
    }

    private static func guestLine(_ running: Bool) -> String {
        running ? "the guest keeps running here" : "the guest stays here, paused"
    }
}
