import Machine

/// What an outgoing migration reports, from its own thread, as it goes.
public enum MigrationEvent: Equatable, Sendable {
    case passCompleted(PassReport)
    case finished(MigrationOutcome)
    /// The guest now runs on the destination; the source holds `pages` pages it still needs.
    case postcopyStarted(pages: Int, afterPasses: Int)
    /// The connection broke (or `migrate_pause`) after the postcopy switchover.
    case postcopyPaused(reason: String)
    case postcopyRecovered
}

/// One pre-copy pass (the last one is the switchover pass, sent with the guest paused).
public struct PassReport: Equatable, Sendable {
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
}

/// How an outgoing migration ended.
public enum MigrationOutcome: Equatable, Sendable {
    case completed(totalMs: UInt64, downtimeMs: UInt64, passes: Int, bytesSent: UInt64)
    /// `guestRunning`: whether the source guest runs again (it was running when migration began).
    case failed(reason: String, afterMs: UInt64, guestRunning: Bool)
    case cancelled(guestRunning: Bool)
}
