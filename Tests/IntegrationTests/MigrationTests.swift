import Foundation
import Glibc
import XCTest

/// Live migration between two real swiftkvm processes over loopback.
final class LiveMigrationTests: XCTestCase {
    static let debugExit = ["-device", "isa-debug-exit,iobase=0xf4,iosize=0x04"]
    var debugExit: [String] { Self.debugExit }

    /// The `dirty` guest sweeping 96 MiB, as every migration test here (and SSHMigrationTests) runs it.
    static func dirtyArgs(ram: String = "150M") -> [String] {
        ["-m", ram, "-kernel", Paths.guest("dirty.elf"), "-append", "base=4M size=96M every=64"] + debugExit
    }

    func dirtyArgs(ram: String = "150M") -> [String] { Self.dirtyArgs(ram: ram) }

    func field(_ report: String, _ name: String) -> Int? {
        guard let line = report.split(separator: "\n").first(where: { $0.hasPrefix(name + ": ") }) else { return nil }
        return Int(line.dropFirst(name.count + 2).split(separator: " ").first ?? "")
    }

    func testDirtyGuestMigratesWhileRunningAndKeepsCheckingMemory() throws {
        let port = freeLoopbackPort()
        let dst = try SwiftKVMProcess(dirtyArgs() + ["-incoming", "tcp:127.0.0.1:\(port)"])
        dst.send("info status\n")
        XCTAssertTrue(dst.waitForOutput("VM status: paused (inmigrate)"), dst.stdout)
        let src = try SwiftKVMProcess(dirtyArgs())
        XCTAssertTrue(src.waitForOutput("sweep 128"), src.stdout)
        src.send(MigrationSettings.converging)
        src.send("migrate -d tcp:127.0.0.1:\(port)\n")
        let report = migrationReport(src, until: ["completed", "failed"])
        XCTAssertTrue(report.hasPrefix("completed"), report + src.stderr)
        XCTAssertGreaterThanOrEqual(field(report, "dirty sync count") ?? 0, 2, report + "\n" + src.stdout)

        // Progress lines: one per pass, numbered 1, 2, 3...; their pages add up to normal + duplicate.
        // Guest output shares stdout and may leave a line unfinished before a progress line.
        let passLines = src.stdout.components(separatedBy: "migration: pass ").dropFirst().map { $0.prefix { $0 != "\n" } }
        XCTAssertGreaterThanOrEqual(passLines.count, 2, src.stdout)
        let numbers = passLines.compactMap { Int($0.prefix { $0 != ":" }) }
        XCTAssertEqual(numbers, Array(1...passLines.count))
        let pagesSent = passLines.compactMap { line -> Int? in
            let afterColon = line.split(separator: ":", maxSplits: 2)[1]
            return Int(afterColon.split(separator: " ").first ?? "")
        }.reduce(0, +)
        XCTAssertEqual(pagesSent, (field(report, "normal") ?? -1) + (field(report, "duplicate") ?? -1), report)
        XCTAssertTrue(src.stdout.contains("migration: completed in "), src.stdout)

        // The guest runs on the destination and its own check of every page keeps passing.
        let sweepsBefore = dst.stdout.components(separatedBy: "sweep ").count
        XCTAssertTrue(dst.waitFor { $0.components(separatedBy: "sweep ").count >= sweepsBefore + 20 }, dst.stdout)
        XCTAssertFalse(dst.stdout.contains("MISMATCH"), dst.stdout)
        dst.send("info status\n")
        XCTAssertTrue(dst.waitForOutput("VM status: running"), dst.stdout)

        // The source stays paused and refuses to run a second copy.
        src.send("info status\ncont\n")
        XCTAssertTrue(src.waitForOutput("VM status: paused (postmigrate)"), src.stdout)
        XCTAssertTrue(src.waitForStderr("two copies"), src.stderr)
        src.send("quit\n"); dst.send("quit\n")
        _ = src.waitForExit(); _ = dst.waitForExit()
    }

    func testAutoConvergeThrottlesAGuestThatOutrunsTheLink() throws {
        // At the default 128 MiB/s the dirty guest rewrites all 96 MiB faster than a pass can
        // send it; only throttling its vCPU lets the migration converge.
        let port = freeLoopbackPort()
        let dst = try SwiftKVMProcess(dirtyArgs() + ["-incoming", "tcp:127.0.0.1:\(port)"])
        dst.send("info status\n")
        XCTAssertTrue(dst.waitForOutput("VM status: paused (inmigrate)"), dst.stdout)
        let src = try SwiftKVMProcess(dirtyArgs())
        XCTAssertTrue(src.waitForOutput("sweep 64"), src.stdout)
        src.send("migrate_set_capability auto-converge on\ninfo migrate_capabilities\nmigrate -d tcp:127.0.0.1:\(port)\n")
        XCTAssertTrue(src.waitForOutput("auto-converge: on"), src.stdout)
        let report = migrationReport(src, until: ["completed", "failed"], seconds: 120)
        XCTAssertTrue(report.hasPrefix("completed"), report + src.stderr)
        XCTAssertGreaterThanOrEqual(field(report, "dirty sync count") ?? 0, 3, report)
        let after = dst.stdout.components(separatedBy: "sweep ").count
        XCTAssertTrue(dst.waitFor { $0.components(separatedBy: "sweep ").count > after + 10 }, "the throttle must not follow the guest: \(dst.stdout)")
        XCTAssertFalse(dst.stdout.contains("MISMATCH"), dst.stdout)
        src.kill(); dst.kill()
    }

    func testStoppedGuestArrivesByteIdenticalWithTheSameRegisters() throws {
        let port = freeLoopbackPort()
        let srcDump = Paths.temporary(self, "src.ram"), dstDump = Paths.temporary(self, "dst.ram")
        let args = ["-m", "64M", "-kernel", Paths.guest("hello.elf")]
        let dst = try SwiftKVMProcess(args + ["-incoming", "tcp:127.0.0.1:\(port)", "-S"])
        let src = try SwiftKVMProcess(args)
        XCTAssertTrue(src.waitForOutput("tick 1"), src.stdout)
        src.send("stop\ninfo registers\npmemsave 0 67108864 \"\(srcDump)\"\nmigrate tcp:127.0.0.1:\(port)\n")
        XCTAssertTrue(src.waitForOutput("migration: completed"), src.stdout + src.stderr)
        dst.send("info status\n")
        XCTAssertTrue(dst.waitForOutput("VM status: paused"), dst.stdout)
        dst.send("info registers\npmemsave 0 67108864 \"\(dstDump)\"\ninfo status\n")
        XCTAssertTrue(dst.waitForOutput("VM status:", count: 2), dst.stdout)
        let a = try Data(contentsOf: URL(fileURLWithPath: srcDump)), b = try Data(contentsOf: URL(fileURLWithPath: dstDump))
        XCTAssertEqual(a.count, 64 << 20)
        XCTAssertTrue(a == b, "RAM differs after migration")
        func registers(_ out: String) -> String {
            guard let start = out.range(of: "RAX=") else { return "" }
            return String(out[start.lowerBound...].prefix { $0 != "X" || true }.split(separator: "\n").prefix(20).joined(separator: "\n"))
        }
        XCTAssertEqual(registers(src.stdout), registers(dst.stdout))
        XCTAssertFalse(registers(src.stdout).isEmpty)
        dst.send("cont\n")
        XCTAssertTrue(dst.waitForOutput("tick"), dst.stdout)
        src.kill(); dst.kill()
    }

    /// The destination commits its RAM ahead of the stream while it waits (RAMPrefaulter);
    /// once pass 1 shows an idle guest's RAM is zero, that memory goes back: the destination
    /// ends up holding what the guest uses, not its whole RAM.
    func testIdleGuestsDestinationGivesBackTheRAMItCommittedAhead() throws {
        let port = freeLoopbackPort()
        let args = ["-m", "1G", "-kernel", Paths.guest("hello.elf")]
        let dst = try SwiftKVMProcess(args + ["-incoming", "tcp:127.0.0.1:\(port)"])
        let src = try SwiftKVMProcess(args)
        XCTAssertTrue(src.waitForOutput("tick 1"), src.stdout)
        XCTAssertTrue(dst.waitFor { _ in dst.residentKiB > 200 << 10 }, "the destination committed no RAM ahead: \(dst.residentKiB) KiB")
        src.send("migrate tcp:127.0.0.1:\(port)\n")
        XCTAssertTrue(src.waitForOutput("migration: completed"), src.stdout + src.stderr)
        XCTAssertTrue(dst.waitForOutput("tick"), dst.stdout)
        XCTAssertLessThan(dst.residentKiB, 64 << 10, "the destination kept the zero RAM it committed")
        src.kill(); dst.kill()
    }

    func testTypedInputSurvivesSwitchover() throws {
        let port = freeLoopbackPort()
        let args = ["-m", "64M", "-kernel", Paths.guest("hello.elf")]
        let srcSock = Paths.temporary(self, "src.sock"), dstSock = Paths.temporary(self, "dst.sock")
        let dst = try SwiftKVMProcess(args + ["-incoming", "tcp:127.0.0.1:\(port)", "-serial", "unix:\(dstSock),server,nowait"])
        let src = try SwiftKVMProcess(args + ["-serial", "unix:\(srcSock),server,nowait"])
        let srcConsole = try UnixClient(path: srcSock, seconds: 20)
        let dstConsole = try UnixClient(path: dstSock, seconds: 20)
        XCTAssertTrue(srcConsole.waitFor("tick"), srcConsole.text)
        srcConsole.send("before-")
        XCTAssertTrue(srcConsole.waitFor("before-"), srcConsole.text)
        // Typed while paused for switchover: sits in the UART's receive FIFO and must move.
        src.send("stop\n")
        src.send("info status\n")
        XCTAssertTrue(src.waitForOutput("VM status: paused"))
        srcConsole.send("queued-")
        usleep(200_000)
        src.send("migrate tcp:127.0.0.1:\(port)\n")
        XCTAssertTrue(src.waitForOutput("migration: completed"), src.stdout + src.stderr)
        // Stopped on the source, so stopped on the destination (as in QEMU) until `cont`.
        XCTAssertTrue(dst.waitForStderr("the guest stays paused, as on the source"), dst.stderr)
        dst.send("info status\ncont\n")
        XCTAssertTrue(dst.waitForOutput("VM status: paused"), dst.stdout)
        XCTAssertTrue(dstConsole.waitFor("queued-"), "input queued in the UART must be echoed on the destination: \(dstConsole.text)")
        dstConsole.send("after")
        XCTAssertTrue(dstConsole.waitFor("after"), dstConsole.text)
        XCTAssertTrue(dstConsole.waitFor("tick"), dstConsole.text)
        src.kill(); dst.kill()
    }

    func testDestinationKilledMidwayLeavesSourceRunningAndRetryWorks() throws {
        let port = freeLoopbackPort()
        let dst = try SwiftKVMProcess(dirtyArgs() + ["-incoming", "tcp:127.0.0.1:\(port)"])
        let src = try SwiftKVMProcess(dirtyArgs())
        XCTAssertTrue(src.waitForOutput("sweep 64"))
        usleep(300_000)
        // The default 128 MiB/s and a guest dirtying all 96 MiB: passes go on until the kill.
        src.send("migrate -d tcp:127.0.0.1:\(port)\n")
        XCTAssertTrue(src.waitForOutput("migration: pass 1:"), src.stdout + src.stderr)
        // Killed outright (a signal it could handle would end it in order, with status 0).
        XCTAssertEqual(kill(dst.process.processIdentifier, SIGKILL), 0)
        XCTAssertNotEqual(dst.waitForExit(), 0)
        let report = migrationReport(src, until: ["failed", "completed"])
        XCTAssertTrue(report.hasPrefix("failed ("), report)
        src.send("info status\n")
        XCTAssertTrue(src.waitForOutput("VM status: running"), src.stdout)
        let sweeps = src.stdout.components(separatedBy: "sweep ").count
        XCTAssertTrue(src.waitFor { $0.components(separatedBy: "sweep ").count > sweeps + 5 }, "the source guest must keep running")
        XCTAssertFalse(src.stdout.contains("MISMATCH"))

        // A new migration to a new destination then succeeds.
        let port2 = freeLoopbackPort()
        let dst2 = try SwiftKVMProcess(dirtyArgs() + ["-incoming", "tcp:127.0.0.1:\(port2)"])
        dst2.send("info status\n")
        XCTAssertTrue(dst2.waitForOutput("VM status: paused (inmigrate)"), dst2.stdout)
        src.send(MigrationSettings.converging + "migrate -d tcp:127.0.0.1:\(port2)\n")
        XCTAssertTrue(src.waitForOutput("migration: completed"), src.stdout + src.stderr)
        let after = dst2.stdout.components(separatedBy: "sweep ").count
        XCTAssertTrue(dst2.waitFor { $0.components(separatedBy: "sweep ").count > after + 5 }, dst2.stdout)
        XCTAssertFalse(dst2.stdout.contains("MISMATCH"))
        src.kill(); dst2.kill()
    }

    func testCancelKeepsSourceRunningAndDestinationExitsNonZero() throws {
        let port = freeLoopbackPort()
        let dst = try SwiftKVMProcess(dirtyArgs() + ["-incoming", "tcp:127.0.0.1:\(port)"])
        let src = try SwiftKVMProcess(dirtyArgs())
        XCTAssertTrue(src.waitForOutput("sweep 64"))
        src.send("migrate -d tcp:127.0.0.1:\(port)\n")
        XCTAssertTrue(src.waitForOutput("migration: pass 1:"), src.stdout + src.stderr)
        src.send("migrate_cancel\n")
        let report = migrationReport(src, until: ["cancelled", "failed", "completed"])
        XCTAssertTrue(report.hasPrefix("cancelled"), report)
        XCTAssertNotEqual(dst.waitForExit(), 0, "the destination must discard the migration and fail")
        XCTAssertFalse(dst.stdout.contains("sweep"), "the destination must never run the guest")
        src.send("info status\n")
        XCTAssertTrue(src.waitForOutput("VM status: running"))
        src.kill()
    }

    func testSourceKilledMidwayDestinationNeverRunsTheGuest() throws {
        let port = freeLoopbackPort()
        let dst = try SwiftKVMProcess(dirtyArgs() + ["-incoming", "tcp:127.0.0.1:\(port)"])
        let src = try SwiftKVMProcess(dirtyArgs())
        XCTAssertTrue(src.waitForOutput("sweep 64"))
        src.send("migrate -d tcp:127.0.0.1:\(port)\n")
        XCTAssertTrue(src.waitForOutput("migration: pass 1:"), src.stdout)
        kill(src.process.processIdentifier, SIGKILL)
        XCTAssertEqual(dst.waitForExit(), 1, dst.stderr)
        XCTAssertTrue(dst.stderr.contains("incoming migration failed"), dst.stderr)
        XCTAssertFalse(dst.stdout.contains("sweep"), "a half-received guest must never run")
    }

    func testConnectionRefusedFailsAndScriptExitsNonZero() throws {
        let port = freeLoopbackPort()
        let src = try SwiftKVMProcess(dirtyArgs())
        XCTAssertTrue(src.waitForOutput("sweep 64"))
        src.send("migrate tcp:127.0.0.1:\(port)\ninfo status\nquit\n")
        XCTAssertEqual(src.waitForExit(), 1, "a failed migrate in a script makes the script fail")
        XCTAssertTrue(src.stderr.contains("migration failed"), src.stderr)
        XCTAssertTrue(src.stdout.contains("VM status: running"), src.stdout)
    }

    func testRAMSizeMismatchIsRefusedWithWhatDiffers() throws {
        let port = freeLoopbackPort()
        let dst = try SwiftKVMProcess(dirtyArgs(ram: "256M") + ["-incoming", "tcp:127.0.0.1:\(port)"])
        let src = try SwiftKVMProcess(dirtyArgs())
        XCTAssertTrue(src.waitForOutput("sweep 64"))
        src.send("migrate tcp:127.0.0.1:\(port)\ninfo status\n")
        XCTAssertTrue(src.waitForOutput("VM status: running"), src.stdout + src.stderr)
        XCTAssertTrue(src.waitForStderr("256 MiB"), src.stderr)
        XCTAssertTrue(src.stderr.contains("150 MiB") && src.stderr.contains("256 MiB"), "the error must say what differs: \(src.stderr)")
        XCTAssertEqual(dst.waitForExit(), 1)
        XCTAssertFalse(dst.stdout.contains("sweep"))
        src.kill()
    }

    func testDeferredIncomingThenMigrateIncoming() throws {
        let path = Paths.temporary(self, "mig.sock")
        let args = ["-m", "64M", "-kernel", Paths.guest("hello.elf")]
        let dst = try SwiftKVMProcess(args + ["-incoming", "defer"])
        dst.send("info status\nmigrate_incoming unix:\(path)\n")
        XCTAssertTrue(dst.waitForOutput("VM status: paused (inmigrate)"))
        let src = try SwiftKVMProcess(args)
        XCTAssertTrue(src.waitForOutput("tick 1"))
        usleep(200_000)
        src.send("migrate unix:\(path)\n")
        XCTAssertTrue(src.waitForOutput("migration: completed"), src.stdout + src.stderr)
        XCTAssertTrue(dst.waitForOutput("tick"), dst.stdout + dst.stderr)
        src.kill(); dst.kill()
    }
}
