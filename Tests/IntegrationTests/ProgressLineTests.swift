import Foundation
import XCTest

/// The live migration progress line: drawn in place above the prompt in a real terminal
/// (tests-tmux/migration-progress.sh), never written anywhere else.
final class ProgressLineTests: XCTestCase {
    /// A guest whose RAM is half non-zero and then idle: pass 1 takes seconds at 32 MiB/s.
    let guestArgs = ["-m", "256M", "-kernel", Paths.guest("dirty.elf"), "-append", "fill=1 sweeps=1 size=128M"]

    func testProgressLineInATerminalUnderTmux() throws {
        try runTmuxScript("migration-progress.sh", [Paths.binary, Paths.guest("dirty.elf"), "\(freeLoopbackPort())"])
    }

    func testAPipedScriptGetsOnlyThePassLines() throws {
        let port = freeLoopbackPort()
        let serialLog = Paths.temporary(self, "serial.log")
        let destination = try SwiftKVMProcess(guestArgs + ["-serial", "null", "-incoming", "tcp:127.0.0.1:\(port)"])
        let source = try SwiftKVMProcess(guestArgs + ["-serial", "file:\(serialLog)"])
        defer { source.kill(); destination.kill() }
        destination.send("info status\n")
        XCTAssertTrue(destination.waitForOutput("VM status: paused (inmigrate)"), destination.stdout + destination.stderr)
        let deadline = Date().addingTimeInterval(30)
        while Date() < deadline, !((try? String(contentsOfFile: serialLog, encoding: .utf8))?.contains("dirty: done 1 sweeps") ?? false) {
            usleep(50_000)
        }

        source.send("migrate_set_parameter max-bandwidth 32\nmigrate -d tcp:127.0.0.1:\(port)\n")
        XCTAssertTrue(source.waitForOutput("migration: completed in ", seconds: 60), source.stdout + source.stderr)
        let output = source.stdout
        XCTAssertTrue(output.contains("migration: pass 1: 65536 pages sent ("), output)
        XCTAssertFalse(output.contains("% of "), "no progress line: " + output)
        XCTAssertFalse(output.contains("\u{1B}"), "no escape sequences: " + output)
        XCTAssertFalse(output.contains("\r"), "no carriage returns: " + output)
        source.send("quit\n"); destination.send("quit\n")
    }
}
