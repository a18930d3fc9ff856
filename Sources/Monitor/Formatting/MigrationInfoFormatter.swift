import Machine
import Migration

/// `info migrate`, `info migrate_parameters` and `info migrate_capabilities`, in QEMU 7.2's
/// HMP layouts, from the migration layer's typed values.
enum MigrationInfoFormatter {
    /// The `globals:` block, then (once a migration has started) its status and figures.
    static func infoMigrate(_ stats: MigrationStats, globals: [MigrationGlobal] = MigrationGlobal.all,
                            showBlocktime: Bool = false) -> String {
        var lines = ["globals:"] + globals.map { "\($0.name): \(onOff($0.isOn))" }
        if stats.status != .none { lines += statusLines(stats, showBlocktime: showBlocktime) }
        return lines.map { $0 + "\n" }.joined()
    }

    private static func statusLines(_ stats: MigrationStats, showBlocktime: Bool) -> [String] {
        var lines: [String] = []
        if case .failed(let reason) = stats.status {
            lines.append("Migration status: failed (\(reason))")
        } else {
            lines.append("Migration status: \(stats.status)")
        }
        lines.append("total time: \(stats.totalTimeMs) ms")
        if let expected = stats.expectedDowntimeMs, stats.status != .completed {
            lines.append("expected downtime: \(expected) ms")
        }
        if let downtime = stats.downtimeMs, stats.status == .completed { lines.append("downtime: \(downtime) ms") }
        lines.append("setup: \(stats.setupTimeMs) ms")
        guard stats.status == .active || stats.status == .completed || stats.status == .cancelling
                || stats.status.isPostcopy else { return lines }
        lines.append("transferred ram: \(stats.transferredBytes / 1024) kbytes")
        lines.append("throughput: \(formatFixed(stats.throughputMbps, decimals: 2)) mbps")
        lines.append("remaining ram: \(stats.remainingBytes / 1024) kbytes")
        lines.append("total ram: \(stats.totalBytes / 1024) kbytes")
        lines.append("duplicate: \(stats.duplicatePages) pages")
        lines.append("skipped: 0 pages")
        lines.append("normal: \(stats.normalPages) pages")
        lines.append("normal bytes: \(stats.normalBytes / 1024) kbytes")
        lines.append("dirty sync count: \(stats.dirtySyncCount)")
        lines.append("page size: \(GuestRAMRegion.pageSize / 1024) kbytes")
        lines.append("multifd bytes: \((stats.compression?.wireBytes ?? 0) / 1024) kbytes")
        lines.append("pages-per-second: \(stats.pagesPerSecond)")
        if stats.dirtyPagesRate > 0 && stats.status != .completed {
            lines.append("dirty pages rate: \(stats.dirtyPagesRate) pages")
        }
        if stats.precopyBytes > 0 { lines.append("precopy ram: \(stats.precopyBytes / 1024) kbytes") }
        if stats.downtimeBytes > 0 { lines.append("downtime ram: \(stats.downtimeBytes / 1024) kbytes") }
        if stats.postcopyRequests > 0 || stats.postcopyBytes > 0 || stats.postcopyFaults != nil {
            lines.append("postcopy request count: \(stats.postcopyRequests)")
        }
        if stats.postcopyBytes > 0 { lines.append("postcopy ram: \(stats.postcopyBytes / 1024) kbytes") }
        if let compression = stats.compression {
            // QEMU's block for compressed pages, after the RAM figures.
            lines.append("compression pages: \(compression.pages) pages")
            lines.append("compression busy: \(compression.notTried)")
            lines.append("compression busy rate: \(formatFixed(compression.busyRate, decimals: 2))")
            lines.append("compressed size: \(compression.frameBytes / 1024) kbytes")
            lines.append("compression rate: \(formatFixed(compression.rate, decimals: 2))")
            // swiftkvm's own: why the other batches went plain.
            lines.append("compression plain batches: \(compression.didNotShrink) did not shrink, \(compression.notSampled) not sampled")
        }
        if let faults = stats.postcopyFaults, showBlocktime {
            lines.append("postcopy blocktime: \(faults.blocktimeMs)")
            lines.append("postcopy vcpu blocktime: [\(faults.blocktimeMs)]")
        }
        if let faults = stats.postcopyFaults {
            lines.append("postcopy page faults: \(faults.faults), wait median \(faults.medianMicroseconds) us, p99 \(faults.p99Microseconds) us")
        }
        return lines
    }

    /// One `name: value` line per parameter, with QEMU's unit words.
    static func parameters(_ parameters: MigrationParameters,
                           list: [MigrationParameter] = MigrationParameter.all) -> String {
        list.map { "\($0.name): \(text(of: parameters[$0], for: $0))\n" }.joined()
    }

    /// One `name: on|off` line per capability.
    static func capabilities(_ capabilities: MigrationCapabilities,
                             list: [MigrationCapability] = MigrationCapability.all) -> String {
        list.map { "\($0.name): \(onOff(capabilities.isOn($0)))\n" }.joined()
    }

    /// A value as QEMU's `info migrate_parameters` prints it: free text quoted (`tls-creds: ''`),
    /// a choice bare (`multifd-compression: none`).
    static func text(of value: MigrationParameterValue, for parameter: MigrationParameter) -> String {
        switch value {
        case .unsigned(let number): return "\(number)\(unitSuffix(parameter.unit))"
        case .bool(let on): return onOff(on)
        case .string(let word):
            if case .choice = parameter.type { return word }
            return "'\(word)'"
        }
    }

    private static func unitSuffix(_ unit: MigrationParameterUnit?) -> String {
        switch unit {
        case .milliseconds?: return " ms"
        case .bytes?: return " bytes"
        case .bytesPerSecond?: return " bytes/second"
        case .percent?, nil: return ""
        }
    }

    private static func onOff(_ on: Bool) -> String { on ? "on" : "off" }
}
