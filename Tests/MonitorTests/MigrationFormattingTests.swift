import Migration
import XCTest
@testable import Monitor

/// What people read about migrations: `info migrate*` in QEMU 7.2's layouts, and swiftkvm's
/// per-pass, final and live progress lines.
final class MigrationFormattingTests: XCTestCase {
    private let globals = """
        globals:
        store-global-state: on
        only-migratable: off
        send-configuration: on
        send-section-footer: off

        """

    func testInfoMigrateBeforeAnyMigrationIsTheGlobalsBlock() {
        XCTAssertEqual(MigrationInfoFormatter.infoMigrate(MigrationStats()), globals)
    }

    func testInfoMigrateLayouts() {
        var stats = MigrationStats()
        stats.status = .completed
        stats.totalTimeMs = 633
        stats.downtimeMs = 22
        stats.setupTimeMs = 1
        stats.transferredBytes = 146_285 * 1024
        stats.throughputMbps = 1900.2345
        stats.totalBytes = 170_824 * 1024
        stats.duplicatePages = 56524
        stats.normalPages = 36376
        stats.dirtySyncCount = 5
        stats.pagesPerSecond = 324_368
        stats.dirtyPagesRate = 100
        stats.precopyBytes = 142_020 * 1024
        stats.downtimeBytes = 4264 * 1024
        XCTAssertEqual(MigrationInfoFormatter.infoMigrate(stats), globals + """
            Migration status: completed
            total time: 633 ms
            downtime: 22 ms
            setup: 1 ms
            transferred ram: 146285 kbytes
            throughput: 1900.23 mbps
            remaining ram: 0 kbytes
            total ram: 170824 kbytes
            duplicate: 56524 pages
            skipped: 0 pages
            normal: 36376 pages
            normal bytes: 145504 kbytes
            dirty sync count: 5
            page size: 4 kbytes
            multifd bytes: 0 kbytes
            pages-per-second: 324368
            precopy ram: 142020 kbytes
            downtime ram: 4264 kbytes

            """)

        stats.status = .active
        stats.expectedDowntimeMs = 7
        stats.downtimeBytes = 0
        let active = MigrationInfoFormatter.infoMigrate(stats, globals: [])
        XCTAssertTrue(active.hasPrefix("globals:\nMigration status: active\ntotal time: 633 ms\nexpected downtime: 7 ms\nsetup: 1 ms\n"), active)
        XCTAssertTrue(active.contains("pages-per-second: 324368\ndirty pages rate: 100 pages\nprecopy ram: 142020 kbytes\n"), active)

        stats.status = .failed(reason: "destination: RAM size differs")
        XCTAssertEqual(MigrationInfoFormatter.infoMigrate(stats, globals: []),
                       "globals:\nMigration status: failed (destination: RAM size differs)\ntotal time: 633 ms\nexpected downtime: 7 ms\nsetup: 1 ms\n")
    }

    func testInfoMigrateParametersIsOneLinePerParameterWithQEMUsUnits() throws {
        var parameters = MigrationParameters()
        XCTAssertEqual(MigrationInfoFormatter.parameters(parameters), """
            throttle-trigger-threshold: 50
            cpu-throttle-initial: 20
            cpu-throttle-increment: 10
            max-cpu-throttle: 99
            tls-creds: ''
            tls-hostname: ''
            max-bandwidth: 134217728 bytes/second
            downtime-limit: 300 ms
            multifd-channels: 2
            multifd-compression: none
            multifd-zstd-level: 1
            tls-authz: ''

            """)
        try parameters.set([(.maxBandwidth, .unsigned(0)), (.downtimeLimit, .unsigned(20)), (.tlsCreds, .string("tls0"))])
        XCTAssertTrue(MigrationInfoFormatter.parameters(parameters).hasSuffix("max-bandwidth: 0 bytes/second\ndowntime-limit: 20 ms\nmultifd-channels: 2\nmultifd-compression: none\nmultifd-zstd-level: 1\ntls-authz: ''\n"))
        XCTAssertTrue(MigrationInfoFormatter.parameters(parameters).contains("tls-creds: 'tls0'\n"))
    }

    func testParameterValuesOfEveryKindReadAsQEMUPrintsThem() {
        let creds = MigrationParameter("tls-creds", .string, default: .string(""), "test entry")
        let compression = MigrationParameter("multifd-compression", .choice(["none", "zstd"]), default: .string("none"), "test entry")
        let tailslow = MigrationParameter("cpu-throttle-tailslow", .bool, default: .bool(false), "test entry")
        let cache = MigrationParameter("xbzrle-cache-size", .size(0...UInt64.max, humanUnit: 1), default: .unsigned(64 << 20),
                                       unit: .bytes, "test entry")
        XCTAssertEqual(MigrationInfoFormatter.parameters(MigrationParameters(), list: [creds, compression, tailslow, cache]), """
            tls-creds: ''
            multifd-compression: none
            cpu-throttle-tailslow: off
            xbzrle-cache-size: 67108864 bytes

            """)
    }

    func testInfoMigrateCapabilitiesListsEveryCapability() throws {
        let controller = MigrationController()
        try controller.setCapability(.autoConverge, on: true)
        let info = MigrationInfoFormatter.capabilities(controller.capabilities)
        XCTAssertTrue(info.hasPrefix("xbzrle: off\nrdma-pin-all: off\nauto-converge: on\nzero-blocks: off\n"), info)
        XCTAssertTrue(info.hasSuffix("zero-copy-send: off\npostcopy-preempt: off\nmapped-ram: off\n"), info)
        XCTAssertEqual(info.split(separator: "\n").count, MigrationCapability.all.count)
    }

    func testPassLine() {
        let report = PassReport(pass: 3, pagesSent: 1843, zeroPages: 310, bytesSent: 7_549_747, durationNs: 41_300_000,
                                bandwidth: 176 << 20, dirtyPages: 212, expectedDowntimeMs: 2, isSwitchover: false)
        XCTAssertEqual(MigrationProgressFormatter.line(for: .passCompleted(report)),
                       "migration: pass 3: 1843 pages sent (7.2 MiB, 310 zero) in 41 ms, 176 MiB/s; 212 dirty, expected downtime 2 ms")
    }

    func testOutcomeLines() {
        XCTAssertEqual(MigrationProgressFormatter.line(for: .finished(.completed(totalMs: 633, downtimeMs: 22, passes: 5, bytesSent: 146 << 20 + 5))),
                       "migration: completed in 633 ms, downtime 22 ms (5 passes, 146 MiB sent)")
        XCTAssertEqual(MigrationProgressFormatter.outcomeLine(.failed(reason: "destination: boom", afterMs: 120, guestRunning: true)),
                       "migration: failed after 120 ms: destination: boom; the guest keeps running here")
        XCTAssertEqual(MigrationProgressFormatter.outcomeLine(.failed(reason: "x", afterMs: 1, guestRunning: false)),
                       "migration: failed after 1 ms: x; the guest stays here, paused")
        XCTAssertEqual(MigrationProgressFormatter.outcomeLine(.cancelled(guestRunning: true)),
                       "migration: cancelled; the guest keeps running here")
    }

    func testProgressLineShowsPercentRateAndTimeLeft() {
        let progress = PassProgress(pass: 1, totalPages: 262144, pagesSent: 112722, bytesSent: 118 << 20, elapsedNs: 1_000_000_000)
        XCTAssertEqual(MigrationProgressFormatter.progressLine(progress),
                       "migration: pass 1: 43% of 262144 pages, 118 MiB/s, about 2 s left")
        XCTAssertEqual(MigrationProgressFormatter.progressLine(PassProgress(pass: 3, totalPages: 100, pagesSent: 0, bytesSent: 0, elapsedNs: 0)),
                       "migration: pass 3: 0% of 100 pages, 0 MiB/s, estimating time left")
        XCTAssertEqual(MigrationProgressFormatter.progressLine(PassProgress(pass: 2, totalPages: 50, pagesSent: 50, bytesSent: 3 << 20, elapsedNs: 2_000_000_000)),
                       "migration: pass 2: 100% of 50 pages, 2 MiB/s, almost done")
    }

    func testDurationsGrowCoarser() {
        XCTAssertEqual(MigrationProgressFormatter.duration(seconds: 0), "1 s")
        XCTAssertEqual(MigrationProgressFormatter.duration(seconds: 59), "59 s")
        XCTAssertEqual(MigrationProgressFormatter.duration(seconds: 125), "2 min 5 s")
        XCTAssertEqual(MigrationProgressFormatter.duration(seconds: 3780), "1 h 3 min")
    }

    func testFixedPointFormatting() {
        XCTAssertEqual(formatFixed(1900.2345, decimals: 2), "1900.23")
        XCTAssertEqual(formatFixed(0.005, decimals: 2), "0.01")
        XCTAssertEqual(formatFixed(7.199, decimals: 1), "7.2")
        XCTAssertEqual(formatFixed(175.6, decimals: 0), "176")
        XCTAssertEqual(formatFixed(0, decimals: 2), "0.00")
    }
}
