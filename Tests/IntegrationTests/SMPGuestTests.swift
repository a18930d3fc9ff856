import Foundation
import Glibc
import XCTest

/// `-smp N` with the smp guest: the boot CPU starts the others with INIT and SIPI, and every
/// CPU checks its own slice of memory, also across live migration and snapshot files.
final class SMPGuestTests: XCTestCase {
    let debugExit = ["-device", "isa-debug-exit,iobase=0xf4,iosize=0x04"]

    func smpArgs(_ cpus: Int, _ append: String = "base=4M size=4M every=2048") -> [String] {
        ["-m", "64M", "-smp", "\(cpus)", "-kernel", Paths.guest("smp.elf"), "-append", append] + debugExit
    }

    /// The sweep numbers CPU `cpu` has reported, in order.
    func sweeps(_ text: String, cpu: Int) -> [Int] {
        text.components(separatedBy: "cpu \(cpu) sweep ").dropFirst().compactMap { Int($0.prefix { $0.isNumber }) }
    }

    /// Waits until every one of `cpus` CPUs has reported `more` sweeps beyond `after`.
    func everyCPUSweeps(_ p: SwiftKVMProcess, cpus: Int, more: Int, after: [Int]? = nil) -> Bool {
        p.waitFor(seconds: 60) { out in
            (0..<cpus).allSatisfy { self.sweeps(out, cpu: $0).count >= (after?[$0] ?? 0) + more }
        }
    }

    /// A destination waiting on a free loopback port, and a source whose every CPU has swept.
    func sourceAndDestination(source: Int, destination: Int) throws -> (SwiftKVMProcess, SwiftKVMProcess, Int) {
        let port = freeLoopbackPort()
        let dst = try SwiftKVMProcess(smpArgs(destination) + ["-incoming", "tcp:127.0.0.1:\(port)"])
        dst.send("info status\n")
        XCTAssertTrue(dst.waitForOutput("VM status: paused (inmigrate)"), dst.stdout)
        let src = try SwiftKVMProcess(smpArgs(source))
        XCTAssertTrue(everyCPUSweeps(src, cpus: source, more: 2), src.stdout)
        return (src, dst, port)
    }

    func testEveryCPUCountFromOneToEightBootsAndChecksItsMemory() throws {
        for n in 1...8 {
            let p = try SwiftKVMProcess(smpArgs(n, "base=4M size=8M sweeps=20 every=10"))
            XCTAssertTrue(p.waitForOutput("smp: all \(n) cpus done"), "-smp \(n): " + p.stdout + p.stderr)
            XCTAssertTrue(p.stdout.contains("smp: \(n) cpus, base=0x400000 size=0x800000"), p.stdout)
            for cpu in 0..<n {
                XCTAssertTrue(p.stdout.contains("smp: cpu \(cpu) up, pages "), "-smp \(n), cpu \(cpu): " + p.stdout)
                XCTAssertTrue(p.stdout.contains("smp: cpu \(cpu) done 20 sweeps"), "-smp \(n), cpu \(cpu): " + p.stdout)
            }
            XCTAssertFalse(p.stdout.contains("smp: cpu \(n) "), "only \(n) CPUs: " + p.stdout)
            XCTAssertFalse(p.stdout.contains("MISMATCH"), p.stdout)
            p.kill()
        }
    }

    func testMonitorListsSelectsAndDumpsEachCPU() throws {
        let p = try SwiftKVMProcess(smpArgs(4) + ["-S"])
        // Before the guest runs, the APs wait for their start-up IPI: QEMU calls that halted.
        p.send("info cpus\n")
        XCTAssertTrue(p.waitForOutput("  CPU #3: thread_id="), p.stdout)
        let lines = p.stdout.split(separator: "\n").filter { $0.contains("CPU #") }
        XCTAssertEqual(lines.count, 4, p.stdout)
        XCTAssertTrue(lines[0].hasPrefix("* CPU #0: thread_id="), p.stdout)
        XCTAssertFalse(lines[0].hasSuffix("(halted)"), p.stdout)
        for line in lines.dropFirst() { XCTAssertTrue(line.hasSuffix(" (halted)"), p.stdout) }
        let threadIDs = Set(lines.compactMap { Int($0.components(separatedBy: "thread_id=")[1].prefix { $0.isNumber }) })
        XCTAssertEqual(threadIDs.count, 4, "one thread per vCPU: " + p.stdout)

        // An AP that has not started sits at the reset vector in real mode.
        p.send("info registers 2\n")
        XCTAssertTrue(p.waitForOutput("CS =f000"), p.stdout)
        p.send("cont\n")
        XCTAssertTrue(everyCPUSweeps(p, cpus: 4, more: 1), p.stdout)
        p.send("cpu 2\ninfo cpus\n")
        XCTAssertTrue(p.waitForOutput("* CPU #2: thread_id="), p.stdout)
        XCTAssertTrue(p.waitForOutput("  CPU #0: thread_id="), p.stdout)
        p.send("cpu 4\n")
        XCTAssertTrue(p.waitForStderr("invalid CPU index: this machine has 4 vCPU(s), numbered from 0"), p.stderr)
        p.send("info registers 9\n")
        XCTAssertTrue(p.waitForStderr("CPU#9 not available"), p.stderr)

        // Every CPU runs in ring 3 on the boot CPU's page tables, each at its own RIP and stack.
        p.send("info registers -a\n")
        XCTAssertTrue(p.waitForOutput("\nCPU#3\n"), p.stdout)
        XCTAssertTrue(p.waitFor { $0.components(separatedBy: "CR3=0000000000105000").count - 1 >= 4 }, p.stdout)
        let dump = p.stdout[p.stdout.range(of: "\nCPU#0\n")!.lowerBound...]
        for cpu in 0..<4 { XCTAssertTrue(dump.contains("\nCPU#\(cpu)\n"), String(dump)) }
        let stacks = Set(dump.components(separatedBy: "RSP=").dropFirst().map { $0.prefix(16) })
        XCTAssertEqual(stacks.count, 4, "each CPU has its own stack: " + String(dump))

        // `x` reads through the selected CPU's page tables: identity-mapped here, as xp sees it.
        p.send("stop\nx /2xg 0x400000\nxp /2xg 0x400000\n")
        XCTAssertTrue(p.waitForOutput("0000000000400000: 0x", count: 2), p.stdout)
        let dumps = p.stdout.components(separatedBy: "0000000000400000: ").dropFirst().map { $0.prefix { $0 != "\n" } }
        XCTAssertEqual(dumps.count, 2, p.stdout)
        XCTAssertEqual(dumps.first, dumps.last, p.stdout)
        XCTAssertNotEqual(dumps.first, "0x0000000000000000 0x0000000000000000", "CPU 0 has swept its first page")

        // A reset sends every AP back to waiting for its start-up IPI; the guest starts them again.
        p.send("system_reset\ninfo cpus\n")
        XCTAssertTrue(p.waitForOutput("  CPU #3: thread_id=", count: 3), p.stdout)
        XCTAssertTrue(p.waitFor { $0.components(separatedBy: " (halted)").count - 1 >= 6 }, "three halted APs again: " + p.stdout)
        p.send("cont\n")
        XCTAssertTrue(p.waitForOutput("smp: all 4 cpus up", count: 2), p.stdout)
        XCTAssertFalse(p.stdout.contains("MISMATCH"), p.stdout)
        p.send("quit\n")
        XCTAssertEqual(p.waitForExit(), 1, "the script had failing lines (cpu 4, info registers 9)")
    }

    func testFourCPUsMigrateLiveAndKeepCheckingTheirMemory() throws {
        let (src, dst, port) = try sourceAndDestination(source: 4, destination: 4)
        src.send(MigrationSettings.converging)
        src.send("migrate -d tcp:127.0.0.1:\(port)\n")
        let report = migrationReport(src, until: ["completed", "failed"])
        XCTAssertTrue(report.hasPrefix("completed"), report + src.stderr)

        // Each CPU carries on from its own sweep count, and its check of every page passes.
        let atSwitchover = (0..<4).map { sweeps(src.stdout, cpu: $0).last ?? 0 }
        XCTAssertTrue(everyCPUSweeps(dst, cpus: 4, more: 3), dst.stdout)
        for cpu in 0..<4 {
            XCTAssertGreaterThanOrEqual(sweeps(dst.stdout, cpu: cpu).first ?? 0, atSwitchover[cpu], "cpu \(cpu): " + dst.stdout)
        }
        XCTAssertFalse(dst.stdout.contains("smp: 4 cpus"), "the guest continued, it did not boot again: " + dst.stdout)
        XCTAssertFalse(dst.stdout.contains("MISMATCH"), dst.stdout)
        src.kill(); dst.kill()
    }

    func testADestinationWithAnotherCPUCountIsRefusedAndTheSourceKeepsRunning() throws {
        let (src, dst, port) = try sourceAndDestination(source: 4, destination: 2)
        src.send("migrate -d tcp:127.0.0.1:\(port)\n")
        XCTAssertEqual(dst.waitForExit(), 1)
        XCTAssertTrue(dst.stderr.contains("vCPU count differs: stream has 4, this machine has 2"), dst.stderr)
        let report = migrationReport(src, until: ["completed", "failed"])
        XCTAssertTrue(report.hasPrefix("failed"), report)
        let before = (0..<4).map { sweeps(src.stdout, cpu: $0).count }
        XCTAssertTrue(everyCPUSweeps(src, cpus: 4, more: 2, after: before), "every CPU still runs on the source: " + src.stdout)
        src.kill()
    }

    func testFourCPUsSavedToAFileRestoreWithEveryCheckPassing() throws {
        let dir = NSTemporaryDirectory() + "skvm-smp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: false)
        addTeardownBlock { try? FileManager.default.removeItem(atPath: dir) }
        let snapshot = dir + "/smp.snap"
        let src = try SwiftKVMProcess(smpArgs(4))
        XCTAssertTrue(everyCPUSweeps(src, cpus: 4, more: 2), src.stdout)
        src.send("migrate_set_parameter max-bandwidth 10G\nmigrate file:\(snapshot)\ninfo status\n")
        XCTAssertTrue(src.waitForOutput("VM status: paused (postmigrate)"), src.stdout + src.stderr)
        let atSave = (0..<4).map { sweeps(src.stdout, cpu: $0).last ?? 0 }
        src.kill()

        let dst = try SwiftKVMProcess(smpArgs(4) + ["-incoming", "file:\(snapshot)"])
        XCTAssertTrue(dst.waitForStderr("incoming migration completed"), dst.stderr)
        XCTAssertTrue(everyCPUSweeps(dst, cpus: 4, more: 3), dst.stdout)
        for cpu in 0..<4 {
            XCTAssertGreaterThanOrEqual(sweeps(dst.stdout, cpu: cpu).first ?? 0, atSave[cpu], "cpu \(cpu): " + dst.stdout)
        }
        XCTAssertFalse(dst.stdout.contains("MISMATCH"), dst.stdout)
        dst.kill()

        let wrong = try SwiftKVMProcess(smpArgs(3) + ["-incoming", "file:\(snapshot)"])
        XCTAssertEqual(wrong.waitForExit(), 1)
        XCTAssertTrue(wrong.stderr.contains("vCPU count differs: stream has 4, this machine has 3"), wrong.stderr)
        XCTAssertFalse(wrong.stdout.contains("cpu 0 sweep"), "the guest never runs: " + wrong.stdout)
    }
}
