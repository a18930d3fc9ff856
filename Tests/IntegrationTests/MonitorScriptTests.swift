import Foundation
import XCTest

/// The monitor driven by a piped script, as a user or a tool would.
final class MonitorScriptTests: XCTestCase {
    let hello = ["-m", "128M", "-kernel", Paths.guest("hello.elf"), "-device", "isa-debug-exit,iobase=0xf4,iosize=0x04"]

    func testScriptStopsInspectsAndResumes() throws {
        let dump = Paths.temporary(self, "ram dump")
        let p = try SwiftKVMProcess(hello)
        XCTAssertTrue(p.waitForOutput("tick 1"), p.stdout)
        p.send("""
        # a comment, then a blank line

        info status
        stop
        info status
        xp /4xb 0x100000
        xp /2xg 0x100000
        pmemsave 0x100000 4096 "\(dump)"
        cont
        info status
        info cpus
        info version
        quit

        """)
        XCTAssertEqual(p.waitForExit(), 0, p.stderr)
        let out = p.stdout
        XCTAssertTrue(out.contains("VM status: running\n"), out)
        XCTAssertTrue(out.contains("VM status: paused\n"), out)
        XCTAssertTrue(out.contains("* CPU #0: thread_id="), out)
        let bytes = try Data(contentsOf: URL(fileURLWithPath: dump))
        XCTAssertEqual(bytes.count, 4096)
        let expected = "0000000000100000: " + bytes.prefix(4).map { String(format: "0x%02x", $0) }.joined(separator: " ")
        XCTAssertTrue(out.contains(expected + "\n"), "expected '\(expected)' in\n\(out)")
        let q0 = bytes.prefix(8).reversed().map { String(format: "%02x", $0) }.joined()
        XCTAssertTrue(out.contains("0000000000100000: 0x\(q0) "), out)
        // Order: running, paused, running.
        // Guest output shares stdout, so a status line may follow a guest's unfinished line.
        let statuses = out.components(separatedBy: "VM status: ").dropFirst().map { $0.prefix { $0 != "\n" } }
        XCTAssertEqual(statuses, ["running", "paused", "running"])
    }

    func testScriptErrorsNameTheLineAndTheScriptGoesOn() throws {
        let p = try SwiftKVMProcess(hello)
        p.send("info status\nfrobnicate 1 2\nxp\ninfo status\nquit\n")
        let status = p.waitForExit()
        XCTAssertNotEqual(status, 0, "a script with failing lines must exit non-zero")
        XCTAssertTrue(p.stderr.contains("line 2:"), p.stderr)
        XCTAssertTrue(p.stderr.contains("unknown command: 'frobnicate'"), p.stderr)
        XCTAssertTrue(p.stderr.contains("line 3:"), p.stderr)
        XCTAssertEqual(p.stdout.components(separatedBy: "VM status: running").count - 1, 2, p.stdout)
    }

    func testEndOfScriptDoesNotStopTheGuest() throws {
        let p = try SwiftKVMProcess(hello)
        p.send("info status\n")
        p.closeStdin()
        XCTAssertTrue(p.waitForOutput("tick 2"), "the guest must keep running after stdin ends: \(p.stdout)")
        XCTAssertTrue(p.process.isRunning)
        p.kill()
    }

    func testStartPausedWaitsForCont() throws {
        let p = try SwiftKVMProcess(hello + ["-S"])
        p.send("info status\n")
        XCTAssertTrue(p.waitForOutput("VM status: paused (prelaunch)"), p.stdout)
        XCTAssertFalse(p.stdout.contains("hello guest"))
        p.send("cont\n")
        XCTAssertTrue(p.waitForOutput("swiftkvm hello guest"), p.stdout)
        p.send("quit\n")
        XCTAssertEqual(p.waitForExit(), 0)
    }

    func testKeyboardControllerResetBootsTheGuestAgain() throws {
        let p = try SwiftKVMProcess(["-kernel", Paths.guest("faults.elf"), "-append", "mode=reset"])
        XCTAssertTrue(p.waitForOutput("faults: reset via i8042 now", count: 3), p.stdout + p.stderr)
        p.send("info status\nquit\n")
        XCTAssertEqual(p.waitForExit(), 0)
        XCTAssertTrue(p.stdout.contains("VM status: running"), p.stdout)
    }

    func testTripleFaultLeavesTheMonitorUsableAndResetBootsAgain() throws {
        let p = try SwiftKVMProcess(["-kernel", Paths.guest("faults.elf"), "-append", "mode=triple"])
        XCTAssertTrue(p.waitForOutput("faults: triple fault now"), p.stdout)
        XCTAssertTrue(p.waitForStderr("triple-faulted"), p.stderr)
        p.send("info status\n")
        XCTAssertTrue(p.waitForOutput("VM status: paused (shutdown)"), p.stdout)
        p.send("system_reset\n")
        XCTAssertTrue(p.waitForOutput("faults: triple fault now", count: 2), p.stdout)
        p.send("quit\n")
        XCTAssertEqual(p.waitForExit(), 0)
    }
}
