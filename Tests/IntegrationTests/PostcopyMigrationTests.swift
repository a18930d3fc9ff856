import Foundation
import Glibc
import XCTest

/// Postcopy between two real swiftkvm processes over loopback: the dirty guest moves before
/// its memory does, its own check of every page runs on the destination, and a connection
/// cut after the switchover is survived.
final class PostcopyMigrationTests: XCTestCase {
    /// A 16 MiB working set the guest rewrites far faster than 32 MiB/s carries it: every
    /// pass leaves it all dirty, so pre-copy alone never converges.
    func smallArgs() -> [String] {
        ["-m", "64M", "-kernel", Paths.guest("dirty.elf"), "-append", "base=4M size=16M every=64"]
    }

    /// 96 MiB still to move after the switchover: long enough to cut the connection midway.
    func largeArgs() -> [String] {
        ["-m", "150M", "-kernel", Paths.guest("dirty.elf"), "-append", "base=4M size=96M every=64"]
    }

    func field(_ report: String, _ name: String) -> Int? {
        guard let line = report.split(separator: "\n").first(where: { $0.hasPrefix(name + ": ") }) else { return nil }
        return Int(line.dropFirst(name.count + 2).split(separator: " ").first ?? "")
    }

    func sweeps(_ p: SwiftKVMProcess) -> Int { p.stdout.components(separatedBy: "sweep ").count }

    /// A destination with postcopy on, waiting.
    func destination(_ args: [String], port: Int) throws -> SwiftKVMProcess {
        let dst = try SwiftKVMProcess(args + ["-incoming", "tcp:127.0.0.1:\(port)"])
        dst.send("migrate_set_capability postcopy-ram on\nmigrate_set_capability postcopy-blocktime on\ninfo migrate_capabilities\n")
        XCTAssertTrue(dst.waitForOutput("postcopy-blocktime: on"), dst.stdout + dst.stderr)
        return dst
    }

    func testGuestThatNeverConvergesFinishesWithPostcopy() throws {
        let port = freeLoopbackPort()
        let dst = try destination(smallArgs(), port: port)
        let src = try SwiftKVMProcess(smallArgs())
        XCTAssertTrue(src.waitForOutput("sweep 64"), src.stdout)
        src.send("migrate_set_capability postcopy-ram on\nmigrate_set_parameter max-bandwidth 32M\nmigrate -d tcp:127.0.0.1:\(port)\n")
        // Pass 2 finds the whole working set dirty again: no pass will ever fit the downtime.
        XCTAssertTrue(src.waitForOutput("migration: pass 2:"), src.stdout + src.stderr)
        let pass2 = src.stdout.components(separatedBy: "migration: pass 2:").last?.prefix { $0 != "\n" } ?? ""
        let dirty = Int(pass2.components(separatedBy: "; ").last?.split(separator: " ").first ?? "") ?? 0
        XCTAssertGreaterThan(dirty, 3000, "the guest must keep its 4096 pages dirty: \(pass2)")
        src.send("migrate_start_postcopy\n")
        XCTAssertTrue(src.waitForOutput("migration: postcopy: the guest runs on the destination"), src.stdout + src.stderr)
        let report = migrationReport(src, until: ["completed", "failed", "postcopy-paused"])
        XCTAssertTrue(report.hasPrefix("completed"), report + src.stderr)
        XCTAssertGreaterThan(field(report, "postcopy ram") ?? 0, 0, report)
        XCTAssertNotNil(field(report, "postcopy request count"), report)

        XCTAssertTrue(dst.waitForStderr("incoming postcopy migration completed"), dst.stderr)
        // The guest's own check of every page keeps passing on the destination.
        let before = sweeps(dst)
        XCTAssertTrue(dst.waitFor { $0.components(separatedBy: "sweep ").count >= before + 20 }, dst.stdout)
        XCTAssertFalse(dst.stdout.contains("MISMATCH"), dst.stdout)
        dst.send("info migrate\ninfo status\n")
        XCTAssertTrue(dst.waitForOutput("VM status: running"), dst.stdout)
        let incoming = dst.stdout.components(separatedBy: "Migration status: ").last ?? ""
        XCTAssertTrue(incoming.hasPrefix("completed"), incoming)
        XCTAssertTrue(incoming.contains("postcopy blocktime: "), incoming)
        XCTAssertTrue(incoming.contains("postcopy page faults: "), incoming)
        src.send("info status\n")
        XCTAssertTrue(src.waitForOutput("VM status: paused (postmigrate)"), src.stdout)
        src.send("quit\n"); dst.send("quit\n")
        _ = src.waitForExit(); _ = dst.waitForExit()
    }

    func testConnectionCutDuringPostcopyPausesBothSidesAndRecovers() throws {
        let port = freeLoopbackPort()
        let dst = try destination(largeArgs(), port: port)
        // The connection runs through a proxy the test cuts, as a failing network would.
        let proxy = FaultProxy(to: port, fault: .watch)
        let src = try SwiftKVMProcess(largeArgs())
        XCTAssertTrue(src.waitForOutput("sweep 64"), src.stdout)
        src.send("migrate_set_capability postcopy-ram on\nmigrate_set_parameter max-bandwidth 32M\nmigrate -d tcp:127.0.0.1:\(proxy.port)\n")
        XCTAssertTrue(migrationReport(src, until: ["active"]).hasPrefix("active"), src.stdout + src.stderr)
        src.send("migrate_start_postcopy\n")
        // Cut only once the destination runs the guest: a cut before it has the whole
        // switchover leaves it nothing to run (it exits, and the source half waits alone).
        XCTAssertTrue(dst.waitForStderr("postcopy: the guest runs here"), dst.stderr)
        proxy.close()

        // Both halves say so and wait.
        XCTAssertTrue(src.waitForOutput("migration: postcopy paused: "), src.stdout)
        XCTAssertTrue(dst.waitForStderr("postcopy paused: lost the source"), dst.stderr)
        XCTAssertTrue(migrationReport(src, until: ["postcopy-paused"]).hasPrefix("postcopy-paused"), src.stdout)
        XCTAssertTrue(migrationReport(dst, until: ["postcopy-paused"]).hasPrefix("postcopy-paused"), dst.stdout)
        src.send("info status\ncont\n")
        XCTAssertTrue(src.waitForOutput("VM status: paused (finish-migrate)"), src.stdout)
        XCTAssertTrue(src.waitForStderr("finish-migrate"), "the source half must refuse to run: \(src.stderr)")

        // Recovery: the destination listens anew, the source reconnects and finishes.
        let recoveryPort = freeLoopbackPort()
        dst.send("migrate_recover tcp:127.0.0.1:\(recoveryPort)\ninfo status\n")
        XCTAssertTrue(dst.waitForOutput("VM status: "), dst.stdout)
        src.send("migrate -r tcp:127.0.0.1:\(recoveryPort)\n")
        XCTAssertTrue(src.waitForOutput("migration: postcopy recovered"), src.stdout + src.stderr)
        let report = migrationReport(src, until: ["completed", "failed"])
        XCTAssertTrue(report.hasPrefix("completed"), report)
        // Postcopy began in pass 1, with most of RAM unsent; the 50 MiB the guest never
        // touched went as zero pages at the switchover, not through the push.
        XCTAssertLessThan(field(report, "postcopy ram") ?? .max, 110 * 1024, report)
        XCTAssertTrue(dst.waitForStderr("incoming postcopy migration completed"), dst.stderr)
        XCTAssertTrue(dst.stderr.contains("postcopy recovered"), dst.stderr)
        let before = sweeps(dst)
        XCTAssertTrue(dst.waitFor { $0.components(separatedBy: "sweep ").count >= before + 10 }, dst.stdout)
        XCTAssertFalse(dst.stdout.contains("MISMATCH"), dst.stdout)
        src.kill(); dst.kill()
    }

    func testPostcopyCommandsAtTheWrongMomentSayWhy() throws {
        let src = try SwiftKVMProcess(smallArgs())
        XCTAssertTrue(src.waitForOutput("sweep 64"), src.stdout)
        src.send("migrate_start_postcopy\nmigrate_set_capability postcopy-ram on\nmigrate_start_postcopy\nmigrate_pause\nmigrate -r tcp:127.0.0.1:1\nmigrate_recover tcp:127.0.0.1:1\ninfo status\n")
        XCTAssertTrue(src.waitForOutput("VM status: running"), src.stdout)
        XCTAssertTrue(src.waitForStderr("Migrate recover can only be run when postcopy is paused."), src.stderr)
        XCTAssertTrue(src.stderr.contains("Enable postcopy with migrate_set_capability before the start of migration"), src.stderr)
        XCTAssertTrue(src.stderr.contains("Postcopy must be started after migration has been started"), src.stderr)
        XCTAssertTrue(src.stderr.contains("migrate-pause is currently only supported during postcopy-active state"), src.stderr)
        XCTAssertTrue(src.stderr.contains("Cannot resume if there is no paused migration"), src.stderr)
        src.kill()
    }

    func testPageRequestOutsideRAMFromAHostileDestinationIsRefused() throws {
        let (listener, port) = Loopback.listen()
        defer { close(listener) }
        let src = try SwiftKVMProcess(smallArgs())
        XCTAssertTrue(src.waitForOutput("sweep 64"), src.stdout)
        src.send("migrate_set_capability postcopy-ram on\nmigrate_set_parameter max-bandwidth 32M\nmigrate -d tcp:127.0.0.1:\(port)\n")
        let connection = Loopback.accept(listener)
        XCTAssertGreaterThanOrEqual(connection, 0)
        defer { close(connection) }
        let drain = TestThread { Loopback.readToEnd(connection).count }
        XCTAssertTrue(migrationReport(src, until: ["active"]).hasPrefix("active"), src.stdout + src.stderr)
        src.send("migrate_start_postcopy\n")
        XCTAssertTrue(src.waitForOutput("migration: postcopy: the guest runs on the destination"), src.stdout + src.stderr)
        // Page 2^32 - 1 of region 0: far past the 16384 pages of a 64 MiB guest.
        var request: [UInt8] = [0x12, 0, 0, 0, 0]
        withUnsafeBytes(of: UInt64(0xFFFF_FFFF).littleEndian) { request += $0 }
        XCTAssertTrue(Loopback.writeAll(connection, request[...]))
        XCTAssertTrue(src.waitForOutput("outside guest RAM"), src.stdout)
        XCTAssertTrue(src.stdout.contains("the destination asked for page 4294967295 of RAM region 0 (16384 pages)"), src.stdout)
        XCTAssertTrue(migrationReport(src, until: ["postcopy-paused"]).hasPrefix("postcopy-paused"), src.stdout)
        src.kill()
        _ = drain.wait(seconds: 10)
    }
}
