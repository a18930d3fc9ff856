import Migration

/// The lines a person watching a migration reads: one per pass, the final one, and the live
/// progress of the pass being sent. These are swiftkvm's own (QEMU's monitor prints none).
enum MigrationProgressFormatter {
    static func line(for event: MigrationEvent) -> String {
        switch event {
        case .passCompleted(let report): return passLine(report)
        case .finished(let outcome): return outcomeLine(outcome)
        case .postcopyStarted(let pages, let passes):
            return "migration: postcopy: the guest runs on the destination after \(passes) passes; \(pages) pages still to send"
        case .postcopyPaused(let reason):
            return "migration: postcopy paused: \(reason); the guest is split between both sides and waits. "
                + "Recover with migrate_recover URI on the destination, then migrate -r URI here"
        case .postcopyRecovered:
            return "migration: postcopy recovered"
        }
    }

    /// `migration: pass 3: 1843 pages sent (7.2 MiB, 310 zero) in 41 ms, 176 MiB/s; 212 dirty, expected downtime 2 ms`
    /// (MiB are bytes on the wire; MiB/s is the pass's wire rate).
    static func passLine(_ report: PassReport) -> String {
        let mib = Double(1 << 20)
        return "migration: pass \(report.pass): \(report.pagesSent) pages sent "
            + "(\(formatFixed(Double(report.bytesSent) / mib, decimals: 1)) MiB, \(report.zeroPages) zero) "
            + "in \(report.durationNs / 1_000_000) ms, \(formatFixed(Double(report.bandwidth) / mib, decimals: 0)) MiB/s; "
            + "\(report.dirtyPages) dirty, expected downtime \(report.expectedDowntimeMs) ms"
    }

    static func outcomeLine(_ outcome: MigrationOutcome) -> String {
        switch outcome {
        case .completed(let total, let downtime, let passes, let bytes):
            return "migration: completed in \(total) ms, downtime \(downtime) ms (\(passes) passes, \(bytes >> 20) MiB sent)"
        case .failed(let reason, let after, let running):
            return "migration: failed after \(after) ms: \(reason); \(guestLine(running))"
        case .cancelled(let running):
            return "migration: cancelled; \(guestLine(running))"
        }
    }

    /// `migration: pass 1: 43% of 262144 pages, 118 MiB/s, about 3 s left`
    static func progressLine(_ progress: PassProgress) -> String {
        let rate = formatFixed(Double(progress.bytesPerSecond) / Double(1 << 20), decimals: 0)
        let left: String
        switch progress.secondsLeft {
        case nil: left = "estimating time left"
        case 0?: left = "almost done"
        case let seconds?: left = "about \(duration(seconds: seconds)) left"
        }
        return "migration: pass \(progress.pass): \(progress.percent)% of \(progress.totalPages) pages, \(rate) MiB/s, \(left)"
    }

    /// `7 s`, `2 min 5 s`, `1 h 3 min`: coarser as it grows, since it is an estimate.
    static func duration(seconds: UInt64) -> String {
        if seconds < 60 { return "\(max(seconds, 1)) s" }
        if seconds < 3600 { return "\(seconds / 60) min \(seconds % 60) s" }
        return "\(seconds / 3600) h \(seconds % 3600 / 60) min"
    }

    private static func guestLine(_ running: Bool) -> String {
        running ? "the guest keeps running here" : "the guest stays here, paused"
    }
}
