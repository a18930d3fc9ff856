import Foundation
import Glibc
import XCTest

/// The run-state rules on a real process: a destination waiting for its migration refuses
/// what would touch the guest the stream is writing, on the human monitor and on QMP.
final class RunStateTests: XCTestCase {
    func testADestinationWaitingForItsMigrationRefusesMigrateAndReset() throws {
        let snapshot = Paths.temporary(self, "inmigrate.snap")
        let qmpPath = Paths.temporary(self, "inmigrate.qmp")
        let port = freeLoopbackPort()
        let p = try SwiftKVMProcess(["-m", "16M", "-kernel", Paths.guest("hello.elf"), "-serial", "null",
                                     "-incoming", "tcp:127.0.0.1:\(port)", "-qmp", "unix:\(qmpPath),server,nowait"])
        defer { p.kill() }
        p.send("migrate file:\(snapshot)\nsystem_reset\nstop\ninfo status\n")
        XCTAssertTrue(p.waitForOutput("VM status: paused (inmigrate)"), p.stdout + p.stderr)
        XCTAssertTrue(p.waitForStderr("line 3:"), p.stderr)
        XCTAssertTrue(p.stderr.contains("line 1: Guest is waiting for an incoming migration"), p.stderr)
        XCTAssertTrue(p.stderr.contains("line 2: Guest is waiting for an incoming migration"), p.stderr)
        XCTAssertTrue(p.stderr.contains("line 3: Guest is waiting for an incoming migration (start swiftkvm with -S"), p.stderr)

        let qmp = try QMPConsolesTests.Client(unix: qmpPath)
        XCTAssertNotNil(qmp.negotiate())
        qmp.send(#"{"execute": "migrate", "arguments": {"uri": "file:\#(snapshot)"}}"#)
        XCTAssertEqual(qmp.message(), #"{"error": {"class": "GenericError", "desc": "Guest is waiting for an incoming migration"}}"# + "\r\n")
        qmp.send(#"{"execute": "system_reset"}"#)
        XCTAssertEqual(qmp.message(), #"{"error": {"class": "GenericError", "desc": "Guest is waiting for an incoming migration"}}"# + "\r\n")
        qmp.send(#"{"execute": "query-status"}"#)
        XCTAssertEqual(qmp.message(), #"{"return": {"running": false, "singlestep": false, "status": "inmigrate"}}"# + "\r\n")
        XCTAssertFalse(FileManager.default.fileExists(atPath: snapshot), "a snapshot was written from a machine without a guest")
        XCTAssertFalse(p.stdout.contains("migration: completed"), p.stdout)
    }
}
