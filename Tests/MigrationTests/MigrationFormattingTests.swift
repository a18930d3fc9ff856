import Machine
import XCTest
@testable import Migration

/// URIs, parameters, capabilities, statistics and event lines as users see them.
final class MigrationFormattingTests: XCTestCase {
    func testURIParsing() throws {
        XCTAssertEqual(try MigrationURI.parse("tcp:0:4444"), .tcp(host: "0", port: "4444"))
        XCTAssertEqual(try MigrationURI.parse("tcp::4444"), .tcp(host: "", port: "4444"))
        XCTAssertEqual(try MigrationURI.parse("tcp:localhost:4444"), .tcp(host: "localhost", port: "4444"))
        XCTAssertEqual(try MigrationURI.parse("tcp:[::1]:4444"), .tcp(host: "::1", port: "4444"))
        XCTAssertEqual(try MigrationURI.parse("unix:/tmp/mig.sock"), .unix(path: "/tmp/mig.sock"))
        XCTAssertTrue(try MigrationURI.parse("tcp:0:1").listensOnAllAddresses)
        XCTAssertTrue(try MigrationURI.parse("tcp:0.0.0.0:1").listensOnAllAddresses)
        XCTAssertFalse(try MigrationURI.parse("tcp:127.0.0.1:1").listensOnAllAddresses)
        XCTAssertEqual(try MigrationURI.parse("tcp:[::1]:4444").description, "tcp:[::1]:4444")
        XCTAssertEqual(try MigrationURI.parse("exec:ssh host swiftkvm -incoming stdio"), .exec(command: "ssh host swiftkvm -incoming stdio"))
        XCTAssertEqual(try MigrationURI.parse("stdio"), .stdio)
        XCTAssertEqual(try MigrationURI.parse("file:/var/lib/vm/a.snap"), .file(path: "/var/lib/vm/a.snap"))
        XCTAssertEqual(try MigrationURI.parse("file:rel/a b.snap").description, "file:rel/a b.snap")
        XCTAssertFalse(try MigrationURI.parse("file:x").hasReturnPath)
        XCTAssertTrue(try MigrationURI.parse("unix:x").hasReturnPath)
        for bad in ["foo", "tcp:", "tcp:host", "tcp:host:99999", "tcp:host:x", "unix:", "exec:", "exec:  ", "tcp:host:-1", "file:"] {
            XCTAssertThrowsError(try MigrationURI.parse(bad)) { error in
                XCTAssertEqual("\(error)", "migrate: invalid URI '\(bad)' (expected tcp:HOST:PORT, unix:PATH, exec:COMMAND or file:PATH; stdio only with -incoming)")
            }
        }
    }

    func testParameterDefaultsAndInfoLayout() {
        XCTAssertEqual(MigrationParameters().formatInfo(), """
            throttle-trigger-threshold: 50
            cpu-throttle-initial: 20
            cpu-throttle-increment: 10
            max-cpu-throttle: 99
            max-bandwidth: 134217728 bytes/second
            downtime-limit: 300 ms

            """)
    }

    func testSettingParameters() throws {
        var parameters = MigrationParameters()
        try parameters.set(name: "max-bandwidth", value: "100")
        XCTAssertEqual(parameters.maxBandwidth, 100 << 20)
        try parameters.set(name: "max-bandwidth", value: "1G")
        XCTAssertEqual(parameters.maxBandwidth, 1 << 30)
        try parameters.set(name: "max-bandwidth", value: "512k")
        XCTAssertEqual(parameters.maxBandwidth, 512 << 10)
        try parameters.set(name: "max-bandwidth", value: "1.5M")
        XCTAssertEqual(parameters.maxBandwidth, 3 << 19)
        try parameters.set(name: "max-bandwidth", value: "0x10")
        XCTAssertEqual(parameters.maxBandwidth, 16 << 20, "bare hex is MiB/s, as in QEMU")
        try parameters.set(name: "max-bandwidth", value: "7E")
        XCTAssertEqual(parameters.maxBandwidth, 7 << 60)
        try parameters.set(name: "max-bandwidth", value: "0")
        XCTAssertEqual(parameters.maxBandwidth, 0)
        try parameters.set(name: "downtime-limit", value: "20")
        XCTAssertEqual(parameters.downtimeLimitMs, 20)
        try parameters.set(name: "cpu-throttle-initial", value: "30")
        try parameters.set(name: "cpu-throttle-increment", value: "0x5")
        try parameters.set(name: "max-cpu-throttle", value: "80")
        try parameters.set(name: "throttle-trigger-threshold", value: "100")
        XCTAssertEqual([parameters.cpuThrottleInitial, parameters.cpuThrottleIncrement, parameters.maxCPUThrottle,
                        parameters.throttleTriggerThreshold], [30, 5, 80, 100])
        XCTAssertTrue(parameters.formatInfo().contains("max-bandwidth: 0 bytes/second\ndowntime-limit: 20 ms\n"))

        let refusals: [(String, String, String)] = [
            ("max-cpu-throttle", "100", "Parameter 'max-cpu-throttle' expects an integer in the range of 1 to 99"),
            ("max-cpu-throttle", "0", "Parameter 'max-cpu-throttle' expects an integer in the range of 1 to 99"),
            ("cpu-throttle-initial", "abc", "Parameter 'cpu-throttle-initial' expects uint8"),
            ("throttle-trigger-threshold", "101", "Parameter 'throttle-trigger-threshold' expects an integer in the range of 1 to 100"),
            ("downtime-limit", "2000001", "Parameter 'downtime-limit' expects an integer in the range of 0 to 2000000 milliseconds"),
            ("downtime-limit", "-1", "Parameter 'downtime-limit' expects uint64"),
            ("max-bandwidth", "fast", "Invalid size fast"),
            ("max-bandwidth", "1.5B", "Invalid size 1.5B"),
            ("max-bandwidth", "8E", "Invalid size 8E"),
            ("max-bandwidth", "16E", "Invalid size 16E"),
            ("max-bandwidth", " 1", "Invalid size  1"),
            ("multifd-channels", "4", "Parameter 'multifd-channels' is not supported by swiftkvm"),
            ("no-such-thing", "1", "invalid parameter value: no-such-thing"),
        ]
        for (name, value, message) in refusals {
            XCTAssertThrowsError(try parameters.set(name: name, value: value)) { XCTAssertEqual("\($0)", message) }
        }
        XCTAssertEqual(parameters.maxCPUThrottle, 80, "a refused value must not change the parameter")
    }

    func testCapabilities() throws {
        var capabilities = MigrationCapabilities()
        let info = capabilities.formatInfo()
        XCTAssertTrue(info.hasPrefix("xbzrle: off\nrdma-pin-all: off\nauto-converge: off\n"), info)
        XCTAssertEqual(info.split(separator: "\n").count, MigrationCapabilities.names.count)
        try capabilities.set(name: "auto-converge", value: "on")
        try capabilities.set(name: "events", on: true)
        try capabilities.set(name: "return-path", on: true)
        try capabilities.set(name: "xbzrle", on: false)
        XCTAssertTrue(capabilities.formatInfo().contains("auto-converge: on\n"))
        XCTAssertTrue(capabilities.formatInfo().contains("return-path: on\n"))
        XCTAssertThrowsError(try capabilities.set(name: "postcopy-ram", on: true)) {
            XCTAssertEqual("\($0)", "Capability 'postcopy-ram' is not supported by swiftkvm")
        }
        XCTAssertThrowsError(try capabilities.set(name: "warp-drive", on: true)) {
            XCTAssertEqual("\($0)", "invalid parameter value: warp-drive")
        }
        XCTAssertThrowsError(try capabilities.set(name: "events", value: "yes"))
    }

    func testPassLineFormat() {
        let report = PassReport(pass: 3, pagesSent: 1843, zeroPages: 310, bytesSent: 7_549_747, durationNs: 41_300_000,
                                bandwidth: 176 << 20, dirtyPages: 212, expectedDowntimeMs: 2, isSwitchover: false)
        XCTAssertEqual(report.description,
                       "migration: pass 3: 1843 pages sent (7.2 MiB, 310 zero) in 41 ms, 176 MiB/s; 212 dirty, expected downtime 2 ms")
        XCTAssertEqual(MigrationEvent.passCompleted(report).description, report.description)
    }

    func testOutcomeLines() {
        XCTAssertEqual(MigrationOutcome.completed(totalMs: 633, downtimeMs: 22, passes: 5, bytesSent: 146 << 20 + 5).description,
                       "migration: completed in 633 ms, downtime 22 ms (5 passes, 146 MiB sent)")
        XCTAssertEqual(MigrationOutcome.failed(reason: "destination: boom", afterMs: 120, guestRunning: true).description,
                       "migration: failed after 120 ms: destination: boom; the guest keeps running here")
        XCTAssertEqual(MigrationOutcome.cancelled(guestRunning: true).description,
                       "migration: cancelled; the guest keeps running here")
    }

    func testInfoMigrateLayouts() {
        XCTAssertEqual(MigrationStats().formatInfo(), "")

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
        XCTAssertEqual(stats.formatInfo(), """
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
        let active = stats.formatInfo()
        XCTAssertTrue(active.hasPrefix("Migration status: active\ntotal time: 633 ms\nexpected downtime: 7 ms\nsetup: 1 ms\n"), active)
        XCTAssertTrue(active.contains("pages-per-second: 324368\ndirty pages rate: 100 pages\nprecopy ram: 142020 kbytes\n"), active)

        stats.status = .failed(reason: "destination: RAM size differs")
        XCTAssertEqual(stats.formatInfo(), "Migration status: failed (destination: RAM size differs)\ntotal time: 633 ms\nexpected downtime: 7 ms\nsetup: 1 ms\n")
    }

    func testFixedPointFormatting() {
        XCTAssertEqual(formatFixed(1900.2345, decimals: 2), "1900.23")
        XCTAssertEqual(formatFixed(0.005, decimals: 2), "0.01")
        XCTAssertEqual(formatFixed(7.199, decimals: 1), "7.2")
        XCTAssertEqual(formatFixed(175.6, decimals: 0), "176")
        XCTAssertEqual(formatFixed(0, decimals: 2), "0.00")
    }
}
