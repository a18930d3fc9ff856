import Foundation
import XCTest

/// QMP clients see MIGRATION and MIGRATION_PASS events for a migration the human monitor
/// started, as QEMU's clients do; the human monitor still prints its own pass lines.
final class QMPEventHumanMonitorTests: XCTestCase {
    let guestArgs = ["-m", "64M", "-kernel", Paths.guest("dirty.elf"), "-append", "base=4M size=32M every=64",
                     "-device", "isa-debug-exit,iobase=0xf4,iosize=0x04", "-serial", "null"]

    func testQMPClientSeesEventsOfAMigrationStartedByTheHumanMonitor() throws {
        let port = freeLoopbackPort()
        let qmpPath = Paths.temporary(self, "qmp")
        let destination = try SwiftKVMProcess(guestArgs + ["-incoming", "tcp:127.0.0.1:\(port)"])
        let source = try SwiftKVMProcess(guestArgs + ["-qmp", "unix:\(qmpPath),server,nowait"])
        defer { source.kill(); destination.kill() }
        destination.send("info status\n")
        XCTAssertTrue(destination.waitForOutput("VM status: paused (inmigrate)"), destination.stdout + destination.stderr)

        let client = try QMPConsolesTests.Client(unix: qmpPath)
        XCTAssertNotNil(client.negotiate())
        client.send(#"{"execute": "migrate-set-capabilities", "arguments": {"capabilities": [{"capability": "events", "state": true}]}}"#)
        XCTAssertEqual(client.message(), #"{"return": {}}"# + "\r\n")

        // The default 128 MiB/s and 300 ms may never catch up with the guest on a loaded machine.
        source.send(MigrationSettings.converging)
        source.send("migrate -d tcp:127.0.0.1:\(port)\n")
        let events = client.read(until: #"{"status": "completed"}"#, seconds: 60) ?? ""
        let statuses = events.components(separatedBy: #""event": "MIGRATION", "data": {"status": ""#).dropFirst()
            .map { String($0.prefix { $0 != "\"" }) }
        XCTAssertEqual(statuses, ["setup", "active", "completed"], events)
        let passes = events.components(separatedBy: #""event": "MIGRATION_PASS", "data": {"pass": "#).dropFirst()
            .compactMap { Int($0.prefix { $0.isNumber }) }
        XCTAssertGreaterThanOrEqual(passes.count, 2, events)
        XCTAssertEqual(passes, Array(1...max(passes.count, 1)), events)
        let firstPass = events.range(of: #""MIGRATION_PASS""#)?.lowerBound
        let active = events.range(of: #"{"status": "active"}"#)?.lowerBound
        XCTAssertTrue(firstPass != nil && active != nil && active! < firstPass!, "active comes before the first pass: " + events)

        // The human monitor that started it prints its pass lines as before.
        XCTAssertTrue(source.waitForOutput("migration: completed in "), source.stdout)
        XCTAssertTrue(source.stdout.contains("migration: pass 1: "), source.stdout)
        destination.send("info status\n")
        XCTAssertTrue(destination.waitForOutput("VM status: running"), destination.stdout)
        source.send("quit\n"); destination.send("quit\n")
    }

    func testHumanMonitorCommandMigrateAnswersAtOnceAndQMPStaysResponsive() throws {
        // Piped stdin makes the human monitor's own `migrate` wait; through QMP it must not,
        // or every client would hang until the migration ends.
        let port = freeLoopbackPort()
        let qmpPath = Paths.temporary(self, "qmp")
        let filled = ["-m", "128M", "-kernel", Paths.guest("dirty.elf"), "-append", "fill=1 sweeps=1 size=64M", "-serial", "null"]
        let destination = try SwiftKVMProcess(filled + ["-incoming", "tcp:127.0.0.1:\(port)"])
        let source = try SwiftKVMProcess(filled + ["-qmp", "unix:\(qmpPath),server,nowait"])
        defer { source.kill(); destination.kill() }
        destination.send("info status\n")
        XCTAssertTrue(destination.waitForOutput("VM status: paused (inmigrate)"), destination.stdout + destination.stderr)

        let client = try QMPConsolesTests.Client(unix: qmpPath)
        XCTAssertNotNil(client.negotiate())
        // 64 MiB of data at 8 MiB/s: pass 1 alone takes seconds.
        client.send(#"{"execute": "migrate-set-parameters", "arguments": {"max-bandwidth": 8388608}}"#)
        XCTAssertEqual(client.message(), #"{"return": {}}"# + "\r\n")
        client.send(#"{"execute": "human-monitor-command", "arguments": {"command-line": "migrate tcp:127.0.0.1:\#(port)"}, "id": 1}"#)
        XCTAssertNotNil(client.read(until: #""id": 1}"#, seconds: 5), "human-monitor-command returned at once")
        client.send(#"{"execute": "query-migrate", "id": 2}"#)
        let status = client.read(until: #""id": 2}"#, seconds: 5) ?? ""
        XCTAssertTrue(status.contains(#""status": "active""#) || status.contains(#""status": "setup""#), status)
        client.send(#"{"execute": "migrate-set-parameters", "arguments": {"max-bandwidth": 10737418240}}"#)
        XCTAssertNotNil(client.read(until: #"{"return": {}}"#))
        XCTAssertTrue(migrationReport(source, until: ["completed", "failed"]).hasPrefix("completed"), source.stdout + source.stderr)
        source.send("info status\n")
        XCTAssertTrue(source.waitForOutput("VM status: paused (postmigrate)"), source.stdout + source.stderr)
        destination.send("info status\n")
        XCTAssertTrue(destination.waitForOutput("VM status: running"), destination.stdout)
    }

    func testSocketMonitorMigrateAnswersAtOnceAndTheMonitorStaysResponsive() throws {
        // As above for a `-monitor unix:` client: only a piped script on stdin waits.
        let port = freeLoopbackPort()
        let monitorPath = Paths.temporary(self, "mon")
        let filled = ["-m", "128M", "-kernel", Paths.guest("dirty.elf"), "-append", "fill=1 sweeps=1 size=64M", "-serial", "null"]
        let destination = try SwiftKVMProcess(filled + ["-incoming", "tcp:127.0.0.1:\(port)"])
        let source = try SwiftKVMProcess(filled + ["-monitor", "unix:\(monitorPath),server,nowait"])
        defer { source.kill(); destination.kill() }
        destination.send("info status\n")
        XCTAssertTrue(destination.waitForOutput("VM status: paused (inmigrate)"), destination.stdout + destination.stderr)

        let monitor = try UnixClient(path: monitorPath, seconds: 20)
        XCTAssertTrue(monitor.waitFor("(monitor) "), monitor.text)
        monitor.send("migrate_set_parameter max-bandwidth 8\nmigrate tcp:127.0.0.1:\(port)\ninfo migrate\n")
        XCTAssertTrue(monitor.waitFor("Migration status: ", seconds: 5), "the monitor answers during the migration: " + monitor.text)
        XCTAssertTrue(monitor.text.contains("Migration status: setup") || monitor.text.contains("Migration status: active"), monitor.text)
        monitor.send("migrate_set_parameter max-bandwidth 10G\n")
        var completed = false
        for _ in 0..<60 where !completed {
            monitor.send("info migrate\n")
            completed = monitor.waitFor("Migration status: completed", seconds: 1)
        }
        XCTAssertTrue(completed, monitor.text)
        destination.send("info status\n")
        XCTAssertTrue(destination.waitForOutput("VM status: running"), destination.stdout)
    }
}
