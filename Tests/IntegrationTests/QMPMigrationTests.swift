import Foundation
import Glibc
import XCTest

/// QMP checked with a client this project did not write: Python's qemu.qmp (PyPI) drives a
/// whole migration between two swiftkvm processes (tests/qmp/migrate.py). `scripts/test`
/// installs the package; without python3 or qemu.qmp this test fails rather than skips.
final class QMPMigrationTests: XCTestCase {
    let guestArgs = ["-m", "150M", "-kernel", Paths.guest("dirty.elf"), "-append", "base=4M size=96M every=64",
                     "-device", "isa-debug-exit,iobase=0xf4,iosize=0x04", "-monitor", "none"]

    func testQEMUsPythonClientMigratesAGuestThroughQMPAlone() throws {
        let sourceQMP = Paths.temporary(self, "src.qmp")
        let destQMP = Paths.temporary(self, "dst.qmp")
        let migrationSocket = Paths.temporary(self, "mig.sock")
        let dest = try SwiftKVMProcess(guestArgs + ["-serial", "null", "-incoming", "defer", "-qmp", "unix:\(destQMP),server,nowait"])
        let source = try SwiftKVMProcess(guestArgs + ["-serial", "stdio", "-qmp", "unix:\(sourceQMP),server,nowait"])
        defer { source.kill(); dest.kill() }
        XCTAssertTrue(source.waitForOutput("sweep 64"), source.stdout + source.stderr)

        let script = Process()
        script.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        script.arguments = ["python3", Paths.repository + "/tests/qmp/migrate.py", sourceQMP, destQMP, "unix:\(migrationSocket)"]
        let output = Pipe()
        script.standardOutput = output
        script.standardError = output
        try script.run()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        script.waitUntilExit()
        XCTAssertEqual(script.terminationStatus, 0, "python3 tests/qmp/migrate.py:\n" + text + "\nsource: " + source.stderr + "\ndest: " + dest.stderr)
        XCTAssertTrue(text.contains("MIGRATION completed"), text)
        XCTAssertTrue(text.hasSuffix("OK\n"), text)

        // The source ends on QMP's quit; the destination keeps running the guest.
        XCTAssertEqual(source.waitForExit(seconds: 10), 0, source.stderr)
        XCTAssertTrue(dest.process.isRunning, dest.stderr)
    }
}
