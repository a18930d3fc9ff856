import Machine
import SystemSupport

/// The iterative part of pre-copy: pass 1 sends all of RAM, every later pass the pages the
/// guest dirtied during the one before, until `policy` says the rest fits in the downtime.
/// Dirty logging must already be on, so pass 1 misses no write made while it runs.
struct PrecopyLoop {
    let machine: MigratableMachine
    let sender: PageSender
    let writer: PageSink
    let policy: ConvergencePolicy
    /// Read before each pass, so `migrate_set_parameter` applies to a running migration.
    let parameters: () -> MigrationParameters
    let autoConvergeEnabled: Bool
    let statistics: MigrationStatistics
    let onPass: (PassReport) -> Void

    struct Result {
        /// Pages dirtied during the last pass, still to send.
        var pending: [[UInt64]]
        var passes: Int
    }

    /// Thrown by the sender's checkpoint to end pre-copy in the middle of a pass: `run` then
    /// returns what that pass had not sent yet, plus what the guest dirtied (postcopy).
    struct SwitchNow: Error {}

    /// Passes that send less than this measure latency more than bandwidth; the previous
    /// estimate is kept instead.
    private static let minimumBytesForEstimate: UInt64 = 256 * 1024

    func run() throws -> Result {
        var autoConverge = AutoConverge(parameters: parameters())
        var selection = PageSelection.all
        var bandwidth: UInt64 = 0
        var pass = 1
        var earlier: [PassReport] = []
        var passesWithinLimit = 0
        while true {
            let settings = parameters()
            sender.limiter.bytesPerSecond = settings.maxBandwidth
            let started = MonotonicClock.nanoseconds()
            statistics.beginPass(pass, totalPages: pageCount(selection))
            let counts: PassCounts
            do {
                defer { statistics.endPass() }
                counts = try sender.send(selection, rearm: rearm)
                writer.writePassEnd(pass)
                try writer.flush()
            } catch is SwitchNow {
                let unsent = selection.remaining(from: sender.position, regions: machine.ramRegions)
                let dirty: [[UInt64]]
                do { dirty = try machine.collectDirtyPages() } catch {
                    throw MigrationError.machine("read the dirty page log", error)
                }
                statistics.update { $0.dirtySyncCount += 1 }
                let pending = PageBitmaps.union(unsent, dirty, regions: unsent.count) { unsent[$0].count }
                return Result(pending: pending, passes: pass - 1)
            }
            let duration = max(MonotonicClock.nanoseconds() - started, 1)

            let dirty: [[UInt64]]
            do { dirty = try machine.collectDirtyPages() } catch {
                throw MigrationError.machine("read the dirty page log", error)
            }
            let dirtyPages = PageBitmaps.count(dirty)
            if counts.bytes >= Self.minimumBytesForEstimate || (bandwidth == 0 && counts.bytes > 0) {
                bandwidth = counts.bytes * 1_000_000_000 / duration
            }
            let report = PassReport(
                pass: pass, pagesSent: counts.pages, zeroPages: counts.zeroPages, bytesSent: counts.bytes,
                durationNs: duration, bandwidth: bandwidth, dirtyPages: dirtyPages,
                expectedDowntimeMs: expectedDowntimeMs(pages: dirtyPages, bandwidth: bandwidth),
                isSwitchover: false)
            statistics.update { stats in
                stats.passes = pass
                stats.dirtySyncCount += 1
                stats.remainingBytes = UInt64(dirtyPages * GuestRAMRegion.pageSize)
                stats.expectedDowntimeMs = report.expectedDowntimeMs
                stats.pagesPerSecond = UInt64(counts.pages) * 1_000_000_000 / duration
                stats.dirtyPagesRate = UInt64(dirtyPages) * 1_000_000_000 / duration
            }
            onPass(report)

            if autoConvergeEnabled, let percent = autoConverge.afterPass(pagesDirtied: dirtyPages, pagesSent: counts.pages) {
                machine.setCPUThrottle(percent: percent)
            }
            passesWithinLimit = report.expectedDowntimeMs <= settings.downtimeLimitMs ? passesWithinLimit + 1 : 0
            let input = ConvergenceInput(lastPass: report, guestRunning: machine.runState.isRunning,
                                         downtimeLimitMs: settings.downtimeLimitMs, earlierPasses: earlier,
                                         passesWithinLimit: passesWithinLimit)
            if policy(input) == .switchover {
                return Result(pending: dirty, passes: pass)
            }
            earlier.append(report)
            selection = .dirty(dirty)
            pass += 1
        }
    }

    /// Manual protect: collecting leaves the log as it is, and each pass re-arms what it sends.
    private var rearm: DirtyLogRearm? {
        machine.dirtyLogRearmChunkPages.map { [machine] chunk in
            DirtyLogRearm(chunkPages: chunk) { try machine.rearmDirtyLog(region: $0, firstPage: $1, pageCount: $2, bitmap: $3) }
        }
    }

    private func pageCount(_ selection: PageSelection) -> Int {
        switch selection {
        case .all: return machine.ramRegions.reduce(0) { $0 + $1.pageCount }
        case .dirty(let bitmaps): return PageBitmaps.count(bitmaps)
        case .union(let first, let second): return PageBitmaps.countUnion(first, second)
        }
    }

    private func expectedDowntimeMs(pages: Int, bandwidth: UInt64) -> UInt64 {
        guard pages > 0 else { return 0 }
        guard bandwidth > 0 else { return .max }
        let bytes = Double(pages * GuestRAMRegion.pageSize)
        return UInt64((bytes * 1000 / Double(bandwidth)).rounded(.up))
    }
}
