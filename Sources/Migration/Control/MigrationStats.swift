import Machine

/// A consistent snapshot of one outgoing migration's progress (QEMU's `query-migrate`).
public struct MigrationStats: Equatable, Sendable {
    public var status: MigrationStatus = .none
    /// Milliseconds since the migration started (frozen when it ends).
    public var totalTimeMs: UInt64 = 0
    public var setupTimeMs: UInt64 = 0
    /// Pause to acknowledgement; set once completed.
    public var downtimeMs: UInt64?
    /// Set while active, after the first pass.
    public var expectedDowntimeMs: UInt64?
    /// Bytes put on the wire (headers included).
    public var transferredBytes: UInt64 = 0
    public var precopyBytes: UInt64 = 0
    /// Bytes sent while the guest was paused for switchover.
    public var downtimeBytes: UInt64 = 0
    public var remainingBytes: UInt64 = 0
    public var totalBytes: UInt64 = 0
    public var duplicatePages: UInt64 = 0
    public var normalPages: UInt64 = 0
    public var dirtySyncCount: UInt64 = 0
    public var pagesPerSecond: UInt64 = 0
    /// Pages the guest dirtied per second during the last pass; 0 until measured.
    public var dirtyPagesRate: UInt64 = 0
    public var passes: Int = 0
    /// Transfer rate over the migration so far, in megabits per second (QEMU's `throughput`).
    public var throughputMbps: Double = 0
    /// The pre-copy pass being sent right now; nil between passes and when none runs.
    public var currentPass: PassProgress?

    public init() {}

    public var normalBytes: UInt64 { normalPages * UInt64(GuestRAMRegion.pageSize) }

    /// `info migrate`, in QEMU 7.2's layout; empty before any migration, as QEMU prints.
    public func formatInfo() -> String {
        if status == .none { return "" }
        var lines: [String] = []
        if case .failed(let reason) = status {
            lines.append("Migration status: failed (\(reason))")
        } else {
            lines.append("Migration status: \(status)")
        }
        lines.append("total time: \(totalTimeMs) ms")
        if let expected = expectedDowntimeMs, status != .completed {
            lines.append("expected downtime: \(expected) ms")
        }
        if let downtime = downtimeMs, status == .completed { lines.append("downtime: \(downtime) ms") }
        lines.append("setup: \(setupTimeMs) ms")
        guard status == .active || status == .completed || status == .cancelling else {
            return lines.joined(separator: "\n") + "\n"
        }
        lines.append("transferred ram: \(transferredBytes / 1024) kbytes")
        lines.append("throughput: \(formatFixed(throughputMbps, decimals: 2)) mbps")
        lines.append("remaining ram: \(remainingBytes / 1024) kbytes")
        lines.append("total ram: \(totalBytes / 1024) kbytes")
        lines.append("duplicate: \(duplicatePages) pages")
        lines.append("skipped: 0 pages")
        lines.append("normal: \(normalPages) pages")
        lines.append("normal bytes: \(normalBytes / 1024) kbytes")
        lines.append("dirty sync count: \(dirtySyncCount)")
        lines.append("page size: \(GuestRAMRegion.pageSize / 1024) kbytes")
        lines.append("multifd bytes: 0 kbytes")
        lines.append("pages-per-second: \(pagesPerSecond)")
        if dirtyPagesRate > 0 && status != .completed { lines.append("dirty pages rate: \(dirtyPagesRate) pages") }
        if precopyBytes > 0 { lines.append("precopy ram: \(precopyBytes / 1024) kbytes") }
        if downtimeBytes > 0 { lines.append("downtime ram: \(downtimeBytes / 1024) kbytes") }
        return lines.joined(separator: "\n") + "\n"
    }
}

/// The shared, lock-protected statistics a job updates and the monitor reads. Every status
/// change is published to `observers`, in order.
final class MigrationStatistics: @unchecked Sendable {
    private let lock = Mutex()
    private let observers: MigrationObservers
    private var stats = MigrationStats()
    private var startedAt: UInt64 = 0
    private var finished = false
    /// Where the running pass started: counters then, and when (0: no pass running).
    private var passBaseline = (pages: UInt64(0), bytes: UInt64(0), startedNs: UInt64(0))

    init(observers: MigrationObservers = MigrationObservers()) {
        self.observers = observers
    }

    func begin(totalBytes: UInt64) {
        changeStatus {
            stats = MigrationStats()
            stats.status = .setup
            stats.totalBytes = totalBytes
            startedAt = MonotonicClock.nanoseconds()
            finished = false
            passBaseline = (0, 0, 0)
        }
    }

    func update(_ change: (inout MigrationStats) -> Void) {
        changeStatus { change(&stats) }
    }

    /// Freezes the times and sets a final status.
    func finish(_ status: MigrationStatus) {
        changeStatus {
            refreshTimes()
            stats.status = status
            stats.currentPass = nil
            passBaseline = (0, 0, 0)
            finished = true
        }
    }

    /// A pre-copy pass of `totalPages` pages starts: its progress is counted from here.
    func beginPass(_ pass: Int, totalPages: Int) {
        lock.withLock {
            passBaseline = (stats.normalPages + stats.duplicatePages, stats.transferredBytes, MonotonicClock.nanoseconds())
            stats.currentPass = PassProgress(pass: pass, totalPages: totalPages, pagesSent: 0, bytesSent: 0, elapsedNs: 0)
        }
    }

    func endPass() {
        lock.withLock {
            stats.currentPass = nil
            passBaseline = (0, 0, 0)
        }
    }

    var elapsedMs: UInt64 { lock.withLock { (MonotonicClock.nanoseconds() - startedAt) / 1_000_000 } }

    var snapshot: MigrationStats {
        lock.withLock {
            if !finished { refreshTimes() }
            refreshPassProgress()
            return stats
        }
    }

    /// Applies `change` under the lock and publishes the status if it changed, both inside
    /// the observers' delivery order.
    private func changeStatus(_ change: () -> Void) {
        observers.publishing {
            let (before, after): (MigrationStatus, MigrationStatus) = lock.withLock {
                let before = stats.status
                change()
                return (before, stats.status)
            }
            return before == after ? nil : .statusChanged(after)
        }
    }

    private func refreshPassProgress() {
        guard passBaseline.startedNs > 0, var progress = stats.currentPass else { return }
        progress.pagesSent = Int(clamping: stats.normalPages + stats.duplicatePages - min(passBaseline.pages, stats.normalPages + stats.duplicatePages))
        progress.bytesSent = stats.transferredBytes - min(passBaseline.bytes, stats.transferredBytes)
        progress.elapsedNs = MonotonicClock.nanoseconds() - passBaseline.startedNs
        stats.currentPass = progress
    }

    private func refreshTimes() {
        guard startedAt > 0 else { return }
        let elapsedNs = MonotonicClock.nanoseconds() - startedAt
        stats.totalTimeMs = elapsedNs / 1_000_000
        // QEMU measures throughput over the transfer time (total minus setup).
        let transferMs = Double(stats.totalTimeMs) - Double(stats.setupTimeMs)
        stats.throughputMbps = transferMs > 0 ? Double(stats.transferredBytes) * 8 / transferMs / 1000 : 0
    }
}

/// A fixed-point number without Foundation (`1900.23`).
func formatFixed(_ value: Double, decimals: Int) -> String {
    guard value.isFinite else { return "0" }
    var scale = 1.0
    for _ in 0..<decimals { scale *= 10 }
    let scaled = (abs(value) * scale).rounded()
    let whole = UInt64(scaled / scale)
    let fraction = UInt64(scaled - Double(whole) * scale)
    let sign = value < 0 && scaled > 0 ? "-" : ""
    guard decimals > 0 else { return "\(sign)\(whole)" }
    let digits = String(fraction)
    return "\(sign)\(whole)." + String(repeating: "0", count: decimals - digits.count) + digits
}
