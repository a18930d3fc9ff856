import Foundation
import Glibc
import XCTest

/// `migrate file:PATH` and `-incoming file:PATH` with real swiftkvm processes.
final class SnapshotFileTests: XCTestCase {
    let debugExit = ["-device", "isa-debug-exit,iobase=0xf4,iosize=0x04"]

    func dirtyArgs(_ extra: String = "") -> [String] {
        ["-m", "64M", "-kernel", Paths.guest("dirty.elf"), "-append", "base=4M size=32M every=64 \(extra)"] + debugExit
    }

    /// A folder of its own, so leftovers of a save (temporary files) can be seen.
    func folder() throws -> String {
        let path = NSTemporaryDirectory() + "skvm-snapshots-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: false)
        addTeardownBlock { try? FileManager.default.removeItem(atPath: path) }
        return path
    }

    func sweepNumbers(_ text: String) -> [Int] {
        text.components(separatedBy: "sweep ").dropFirst().compactMap { Int($0.prefix { $0.isNumber }) }
    }

    /// A stopped hello guest saved to `path` (a quick, small snapshot).
    func saveHello(to path: String, ram: String = "64M") throws {
        let src = try SwiftKVMProcess(["-m", ram, "-kernel", Paths.guest("hello.elf")])
        XCTAssertTrue(src.waitForOutput("tick 1"), src.stdout)
        src.send("stop\nmigrate file:\(path)\n")
        XCTAssertTrue(src.waitForOutput("migration: completed"), src.stdout + src.stderr)
        src.kill()
    }

    func testDirtyGuestSavedWhileRunningRestoresTwiceAndKeepsCheckingMemory() throws {
        let dir = try folder()
        let snapshot = dir + "/dirty.snap"
        let src = try SwiftKVMProcess(dirtyArgs())
        XCTAssertTrue(src.waitForOutput("sweep 128"), src.stdout)
        src.send("migrate_set_parameter max-bandwidth 10G\nmigrate file:\(snapshot)\ninfo status\n")
        XCTAssertTrue(src.waitForOutput("VM status: paused (postmigrate)"), src.stdout + src.stderr)
        XCTAssertTrue(src.stdout.contains("migration: completed in "), src.stdout)
        let sweepsAtSave = sweepNumbers(src.stdout).last ?? 0

        var info = stat()
        XCTAssertEqual(stat(snapshot, &info), 0)
        XCTAssertEqual(info.st_mode & 0o777, 0o600, "a snapshot holds all of guest memory")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir), ["dirty.snap"], "no temporary file is left")

        // Nothing else runs this guest now, so the source may carry on without -f.
        src.send("cont\ninfo status\n")
        XCTAssertTrue(src.waitForOutput("VM status: running"), src.stdout + src.stderr)
        let sweepsBeforeCont = sweepNumbers(src.stdout).count
        XCTAssertTrue(src.waitFor { self.sweepNumbers($0).count >= sweepsBeforeCont + 5 }, src.stdout)
        src.kill()
        XCTAssertFalse(src.stdout.contains("MISMATCH"), src.stdout)

        for restore in 1...2 {
            let dst = try SwiftKVMProcess(dirtyArgs() + ["-incoming", "file:\(snapshot)"])
            XCTAssertTrue(dst.waitForStderr("incoming migration completed"), "restore \(restore): " + dst.stderr)
            XCTAssertTrue(dst.waitFor { self.sweepNumbers($0).count >= 20 }, "restore \(restore): " + dst.stdout)
            dst.send("info status\n")
            XCTAssertTrue(dst.waitForOutput("VM status: running"), dst.stdout)
            dst.kill()
            XCTAssertFalse(dst.stdout.contains("MISMATCH"), "restore \(restore): " + dst.stdout)
            XCTAssertFalse(dst.stdout.contains("dirty: base="), "the guest continued, it did not boot again: \(dst.stdout)")
            XCTAssertGreaterThanOrEqual(sweepNumbers(dst.stdout).first ?? 0, sweepsAtSave, dst.stdout)
        }
    }

    func testZeroPagesTakeNoRoomInTheFile() throws {
        let snapshot = try folder() + "/idle.snap"
        try saveHello(to: snapshot, ram: "1G")
        let size = (try FileManager.default.attributesOfItem(atPath: snapshot)[.size] as? Int) ?? -1
        // 262144 pages: a kind byte each (256 KiB) plus the few pages hello touched.
        XCTAssertGreaterThan(size, 0)
        XCTAssertLessThan(size, 2 << 20, "an idle 1 GiB guest must not take \(size) bytes")

        let dst = try SwiftKVMProcess(["-m", "1G", "-kernel", Paths.guest("hello.elf"), "-S", "-incoming", "file:\(snapshot)"])
        XCTAssertTrue(dst.waitForStderr("incoming migration completed"), dst.stderr)
        dst.send("info status\ncont\n")
        XCTAssertTrue(dst.waitForOutput("VM status: paused"), dst.stdout)
        XCTAssertTrue(dst.waitForOutput("tick"), dst.stdout)
        dst.kill()
    }

    func testAGuestSavedWhileStoppedIsRestoredStopped() throws {
        let snapshot = try folder() + "/stopped.snap"
        try saveHello(to: snapshot)
        let dst = try SwiftKVMProcess(["-m", "64M", "-kernel", Paths.guest("hello.elf"), "-incoming", "file:\(snapshot)"])
        XCTAssertTrue(dst.waitForStderr("incoming migration completed"), dst.stderr)
        XCTAssertTrue(dst.stderr.contains("the guest stays paused, as on the source"), dst.stderr)
        dst.send("info status\n")
        XCTAssertTrue(dst.waitForOutput("VM status: paused\n"), dst.stdout)
        XCTAssertFalse(dst.stdout.contains("tick"), "a stopped guest must not run: " + dst.stdout)
        dst.send("cont\n")
        XCTAssertTrue(dst.waitForOutput("tick"), dst.stdout)
        dst.kill()
    }

    func testBrokenOrForeignFilesAreRefusedAndTheGuestNeverRuns() throws {
        let dir = try folder()
        let good = dir + "/good.snap"
        try saveHello(to: good)
        let bytes = try Data(contentsOf: URL(fileURLWithPath: good))
        XCTAssertGreaterThan(bytes.count, 4096)

        var corrupted = bytes
        corrupted[bytes.count / 2] ^= 0x40
        // A flipped bit is caught by a format check or the digest, or, if it lands in a length,
        // as a file that ends too soon.
        let cases: [(name: String, contents: Data?, ram: String, messages: [String])] = [
            ("truncated.snap", bytes.prefix(bytes.count / 2), "64M", ["is incomplete: the file ends while"]),
            ("empty.snap", Data(), "64M", ["is incomplete"]),
            ("foreign.snap", Data("#!/bin/sh\necho not a snapshot\n".utf8) + Data(count: 8192), "64M", ["is not a swiftkvm snapshot"]),
            ("corrupted.snap", corrupted, "64M", ["corrupt", "is incomplete"]),
            ("good.snap", nil, "128M", ["RAM size differs: stream has 64 MiB, this machine has 128 MiB"]),
            ("missing.snap", nil, "64M", ["cannot open \(dir)/missing.snap: No such file or directory"]),
        ]
        for item in cases {
            let path = dir + "/" + item.name
            if let contents = item.contents { try contents.write(to: URL(fileURLWithPath: path)) }
            let run = try runSwiftKVM(["-m", item.ram, "-kernel", Paths.guest("hello.elf"), "-incoming", "file:\(path)"],
                                      stdin: "info status\n", seconds: 30)
            XCTAssertEqual(run.status, 1, "\(item.name): \(run.stderr)")
            XCTAssertTrue(item.messages.contains { run.stderr.contains($0) }, "\(item.name): \(run.stderr)")
            XCTAssertFalse(run.stdout.contains("tick"), "\(item.name): the guest ran: \(run.stdout)")
        }
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: good)), bytes, "restoring never changes the file")
    }

    func testCancelledSaveKeepsTheEarlierSnapshot() throws {
        let dir = try folder()
        let snapshot = dir + "/keep.snap"
        let src = try SwiftKVMProcess(dirtyArgs("fill=1"))
        XCTAssertTrue(src.waitForOutput("sweep 64"), src.stdout)
        src.send("migrate_set_parameter max-bandwidth 10G\nmigrate file:\(snapshot)\ncont\n")
        XCTAssertTrue(src.waitForOutput("migration: completed"), src.stdout + src.stderr)
        let saved = try Data(contentsOf: URL(fileURLWithPath: snapshot))

        // At 1 MiB/s the 32 MiB of data take half a minute: time enough to cancel.
        src.send("migrate_set_parameter max-bandwidth 1\nmigrate -d file:\(snapshot)\n")
        XCTAssertTrue(migrationReport(src, until: ["active"], seconds: 30).hasPrefix("active"), src.stdout)
        src.send("migrate_cancel\n")
        XCTAssertTrue(migrationReport(src, until: ["cancelled"], seconds: 30).hasPrefix("cancelled"), src.stdout)
        src.send("info status\n")
        XCTAssertTrue(src.waitForOutput("VM status: running"), src.stdout)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir), ["keep.snap"], "the unfinished save is removed")
        XCTAssertTrue(try Data(contentsOf: URL(fileURLWithPath: snapshot)) == saved, "the earlier snapshot is intact")

        // A save into a folder that does not exist fails at once and the guest runs on.
        src.send("migrate -d file:\(dir)/missing/x.snap\n")
        XCTAssertTrue(migrationReport(src, until: ["failed"], seconds: 30).hasPrefix("failed"), src.stdout)
        XCTAssertTrue(src.waitForOutput("cannot create a file next to \(dir)/missing/x.snap: No such file or directory"), src.stdout)
        src.kill()
        XCTAssertFalse(src.stdout.contains("MISMATCH"), src.stdout)
    }
}
