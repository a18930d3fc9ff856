import Foundation
import Glibc
import XCTest

/// multifd with multifd-compression zstd between two real swiftkvm processes over loopback.
/// Loopback is faster than zstd, so the source is told to compress every batch
/// (SWIFTKVM_MIGRATION_COMPRESS_ALWAYS); the link-driven choice is unit-tested.
final class CompressedMigrationTests: XCTestCase {
    static let compressing = "migrate_set_capability multifd on\nmigrate_set_parameter multifd-compression zstd\n"
    static let always = ["SWIFTKVM_MIGRATION_COMPRESS_ALWAYS": "1"]

    func field(_ report: String, _ name: String) -> Int? {
        guard let line = report.split(separator: "\n").first(where: { $0.hasPrefix(name + ": ") }) else { return nil }
        return Int(line.dropFirst(name.count + 2).split(separator: " ").first ?? "")
    }

    /// 8 MiB of text-like data, loaded as the hello guest's initrd: compressible, as a page cache is.
    func compressibleFile() throws -> String {
        let path = NSTemporaryDirectory() + "skvm-zstd-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).img"
        var text = Data()
        var line = 0
        while text.count < 8 << 20 {
            text.append(Data("line \(line): the guest's page cache holds files like this one, \(line * 7919 % 100_003)\n".utf8))
            line += 1
        }
        try text.prefix(8 << 20).write(to: URL(fileURLWithPath: path))
        addTeardownBlock { unlink(path) }
        return path
    }

    func testCompressedMigrationDeliversEveryByteOfTheGuestsMemory() throws {
        let initrd = try compressibleFile()
        let args = ["-m", "64M", "-kernel", Paths.guest("hello.elf"), "-initrd", initrd] + LiveMigrationTests.debugExit
        let port = freeLoopbackPort()
        let dst = try SwiftKVMProcess(args + ["-incoming", "tcp:127.0.0.1:\(port)"])
        defer { dst.kill() }
        // As QEMU scripts do, the destination gets the same settings; it decodes what it is sent.
        dst.send(Self.compressing + "info status\n")
        XCTAssertTrue(dst.waitForOutput("VM status: paused (inmigrate)"), dst.stdout)
        let src = try SwiftKVMProcess(args, environment: Self.always)
        defer { src.kill() }
        src.send(Self.compressing + "migrate_set_parameter multifd-zstd-level 3\nmigrate_set_parameter max-bandwidth 10G\ninfo migrate_parameters\n")
        XCTAssertTrue(src.waitForOutput("multifd-zstd-level: 3"), src.stdout)
        src.send("migrate -d tcp:127.0.0.1:\(port)\n")
        let report = migrationReport(src, until: ["completed", "failed"])
        XCTAssertTrue(report.hasPrefix("completed"), report + src.stderr)

        // The initrd's pages went compressed: fewer bytes than their data.
        let compressedPages = try XCTUnwrap(field(report, "compression pages"), report)
        XCTAssertGreaterThanOrEqual(compressedPages, (8 << 20) / 4096, report)
        let compressedKiB = try XCTUnwrap(field(report, "compressed size"), report)
        XCTAssertLessThan(compressedKiB * 3, compressedPages * 4, "8 MiB of text shrinks more than 3x: \(report)")
        XCTAssertLessThan(try XCTUnwrap(field(report, "transferred ram")), try XCTUnwrap(field(report, "normal bytes")), report)
        XCTAssertGreaterThan(try XCTUnwrap(field(report, "multifd bytes")), compressedKiB, report)

        // The initrd lies byte for byte in the destination's memory (the guest has run there since,
        // so the rest of RAM may differ from the source's).
        let dump = NSTemporaryDirectory() + "skvm-zstd-dump-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).bin"
        addTeardownBlock { unlink(dump) }
        // A piped monitor answers the next line once the file is complete.
        dst.send("stop\npmemsave 0 0x4000000 \(dump)\ninfo status\n")
        XCTAssertTrue(dst.waitForOutput("VM status: paused", count: 2), dst.stdout + dst.stderr)
        let memory = try Data(contentsOf: URL(fileURLWithPath: dump))
        XCTAssertEqual(memory.count, 64 << 20)
        let data = try Data(contentsOf: URL(fileURLWithPath: initrd))
        XCTAssertNotNil(memory.range(of: data), "the initrd did not arrive intact")
    }

    func testARunningDirtyGuestMigratesCompressedAndKeepsCheckingItsMemory() throws {
        let port = freeLoopbackPort()
        let dst = try SwiftKVMProcess(LiveMigrationTests.dirtyArgs() + ["-incoming", "tcp:127.0.0.1:\(port)"])
        defer { dst.kill() }
        dst.send("info status\n")
        XCTAssertTrue(dst.waitForOutput("VM status: paused (inmigrate)"), dst.stdout)
        let src = try SwiftKVMProcess(LiveMigrationTests.dirtyArgs(), environment: Self.always)
        defer { src.kill() }
        XCTAssertTrue(src.waitForOutput("sweep 64"), src.stdout)
        src.send(MigrationSettings.converging + Self.compressing + "migrate -d tcp:127.0.0.1:\(port)\n")
        let report = migrationReport(src, until: ["completed", "failed"])
        XCTAssertTrue(report.hasPrefix("completed"), report + src.stderr)
        XCTAssertGreaterThan(field(report, "compression pages") ?? 0, 0, report)

        // Each page holds its sweep number: the guest checks every one of them on each sweep.
        let sweepsBefore = dst.stdout.components(separatedBy: "sweep ").count
        XCTAssertTrue(dst.waitFor { $0.components(separatedBy: "sweep ").count >= sweepsBefore + 10 }, dst.stdout)
        XCTAssertFalse(dst.stdout.contains("MISMATCH"), dst.stdout)
    }
}
