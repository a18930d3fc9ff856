import Machine
import SystemSupport

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
    /// Bytes of pages sent after the postcopy switchover (QEMU's `postcopy ram`).
    public var postcopyBytes: UInt64 = 0
    /// Pages the destination asked for during postcopy (QEMU's `postcopy request count`).
    public var postcopyRequests: UInt64 = 0
    /// Destination only: how long vCPUs waited for missing pages, and for each fault.
    public var postcopyFaults: PostcopyFaultStats?
    public var remainingBytes: UInt64 = 0
    public var totalBytes: UInt64 = 0
    public var duplicatePages: UInt64 = 0
    public var normalPages: UInt64 = 0
    public var dirtySyncCount: UInt64 = 0
    public var pagesPerSecond: UInt64 = 0
    /// Pages the guest dirtied per second during the last pass; 0 until measured.
    public var dirtyPagesRate: UInt64 = 0
    public var passes: Int = 0
    /// Set once a migration with multifd-compression zstd sends RAM.
    public var compression: CompressionCounts?
    /// Transfer rate over the migration so far, in megabits per second (QEMU's `throughput`).
    public var throughputMbps: Double = 0
    /// The pre-copy pass being sent right now; nil between passes and when none runs.
    public var currentPass: PassProgress?

    public init() {}

    public var normalBytes: UInt64 { normalPages * UInt64(GuestRAMRegion.pageSize) }
}

/// The shared, lock-protected statistics a job updates and the monitor reads. Every status
/// change is published to `observers`, in order.
final class MigrationStatistics: @unchecked Sendable {
    private let lock = Mutex()
    private let observers: ObserverList<MigrationNotification>
    private var stats = MigrationStats()
    private var startedAt: UInt64 = 0
    private var finished = false
    /// Where the running pass started: counters then, and when (0: no pass running).
    private var passBaseline = (pages: UInt64(0), bytes: UInt64(0), startedNs: UInt64(0))

    init(observers: ObserverList<MigrationNotification> = ObserverList()) {
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

/// How long the destination's vCPUs waited for pages during postcopy: one sample per fault on
/// a page still on the source, from the fault to the page being in place.
public struct PostcopyFaultStats: Equatable, Sendable {
    public var faults: Int
    /// The sum of all waits (QEMU's `postcopy blocktime`, exact for one vCPU).
    public var blocktimeMs: UInt64
    public var medianMicroseconds: UInt64
    public var p99Microseconds: UInt64

    public init(latenciesNs samples: [UInt64]) {
        let sorted = samples.sorted()
        faults = sorted.count
        blocktimeMs = sorted.reduce(0, +) / 1_000_000
        medianMicroseconds = sorted.isEmpty ? 0 : sorted[sorted.count / 2] / 1000
        p99Microseconds = sorted.isEmpty ? 0 : sorted[min(sorted.count - 1, sorted.count * 99 / 100)] / 1000
    }
}
