import Foundation
import Glibc
import XCTest

/// `migrate file:` with the mapped-ram capability, and `-incoming file:` of such a file (mapped
/// copy-on-write, or read in whole with -mem-prealloc), with real swiftkvm processes.
final class MappedRAMSnapshotTests: XCTestCase {
    let debugExit = ["-device", "isa-debug-exit,iobase=0xf4,iosize=0x04"]

    func dirtyArgs() -> [String] {
        ["-m", "64M", "-kernel", Paths.guest("dirty.elf"), "-append", "base=4M size=32M every=64"] + debugExit
    }

    func folder() throws -> String {
        let path = NSTemporaryDirectory() + "skvm-mapped-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: false)
        addTeardownBlock { try? FileManager.default.removeItem(atPath: path) }
        return path
    }

    func sweepNumbers(_ text: String) -> [Int] {
        text.components(separatedBy: "sweep ").dropFirst().compactMap { Int($0.prefix { $0.isNumber }) }
    }

    /// Saves the running dirty guest with mapped-ram; returns the last sweep seen before the save.
    func saveDirtyGuest(to path: String) throws -> Int {
        let src = try SwiftKVMProcess(dirtyArgs())
        defer { src.kill() }
        XCTAssertTrue(src.waitForOutput("sweep 128"), src.stdout)
        src.send("migrate_set_capability mapped-ram on\nmigrate_set_parameter max-bandwidth 10G\nmigrate file:\(path)\ninfo status\n")
        XCTAssertTrue(src.waitForOutput("VM status: paused (postmigrate)"), src.stdout + src.stderr)
        XCTAssertTrue(src.stdout.contains("migration: completed in "), src.stdout + src.stderr)
        return sweepNumbers(src.stdout).last ?? 0
    }

    func testDirtyGuestRestoresFromTheMappedFileTwiceIdenticallyAndKeepsCheckingMemory() throws {
        let dir = try folder()
        let snapshot = dir + "/dirty.snap"
        let sweepsAtSave = try saveDirtyGuest(to: snapshot)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir), ["dirty.snap"], "no temporary file is left")

        // Two restores, both held paused (-S): their memory and registers must be the same.
        var dumps: [Data] = []
        var registers: [String] = []
        var dataPages = 0
        for restore in 1...2 {
            let dump = dir + "/ram\(restore).bin"
            let dst = try SwiftKVMProcess(dirtyArgs() + ["-S", "-incoming", "file:\(snapshot)"])
            defer { dst.kill() }
            XCTAssertTrue(dst.waitForStderr("incoming migration completed"), "restore \(restore): " + dst.stderr)
            let line = dst.stderr.components(separatedBy: "\n").first { $0.contains("incoming migration completed") } ?? ""
            dataPages = Int(line.components(separatedBy: "passes, ").last?.prefix { $0.isNumber } ?? "") ?? 0
            dst.send("info registers\npmemsave 0 0x4000000 \(dump)\ninfo status\n")
            XCTAssertTrue(dst.waitForOutput("VM status: paused"), dst.stdout + dst.stderr)
            registers.append(dst.stdout.components(separatedBy: "VM status").first ?? "")
            dumps.append(try Data(contentsOf: URL(fileURLWithPath: dump)))
            XCTAssertFalse(dst.stdout.contains("sweep"), "-S keeps the guest paused: \(dst.stdout)")

            dst.send("cont\n")
            XCTAssertTrue(dst.waitFor { self.sweepNumbers($0).count >= 20 }, "restore \(restore): " + dst.stdout)
            dst.kill()
            XCTAssertFalse(dst.stdout.contains("MISMATCH"), "restore \(restore): " + dst.stdout)
            XCTAssertFalse(dst.stdout.contains("dirty: base="), "the guest continued, it did not boot again: \(dst.stdout)")
            XCTAssertGreaterThanOrEqual(sweepNumbers(dst.stdout).first ?? 0, sweepsAtSave, dst.stdout)
        }
        XCTAssertEqual(dumps[0].count, 64 << 20)
        XCTAssertTrue(dumps[0] == dumps[1], "two restores of one file must hold the same memory")
        XCTAssertTrue(registers[0].contains("RIP="), registers[0])
        XCTAssertEqual(registers[0], registers[1], "two restores of one file must have the same registers")

        // The file takes the room of its data (32 MiB the guest wrote, plus its kernel), however
        // many passes wrote each page; zero pages are holes.
        var info = stat()
        XCTAssertEqual(stat(snapshot, &info), 0)
        XCTAssertEqual(info.st_mode & 0o777, 0o600)
        let allocated = Int(info.st_blocks) * 512
        let data = dataPages * 4096
        XCTAssertGreaterThanOrEqual(data, 32 << 20)
        XCTAssertGreaterThanOrEqual(allocated, data, "every data page is in the file")
        XCTAssertLessThanOrEqual(Double(allocated), Double(data) * 1.05, "file takes \(allocated) bytes for \(data) of data")
    }

    func testPreallocatedRestoreReadsTheWholeFileAndRuns() throws {
        let snapshot = try folder() + "/dirty.snap"
        let sweepsAtSave = try saveDirtyGuest(to: snapshot)
        let dst = try SwiftKVMProcess(dirtyArgs() + ["-mem-prealloc", "-incoming", "file:\(snapshot)"])
        defer { dst.kill() }
        XCTAssertTrue(dst.waitForStderr("incoming migration completed"), dst.stderr)
        XCTAssertTrue(dst.waitFor { self.sweepNumbers($0).count >= 20 }, dst.stdout)
        dst.kill()
        XCTAssertFalse(dst.stdout.contains("MISMATCH"), dst.stdout)
        XCTAssertGreaterThanOrEqual(sweepNumbers(dst.stdout).first ?? 0, sweepsAtSave, dst.stdout)
    }

    func testBrokenMappedFilesAreRefusedAndTheGuestNeverRuns() throws {
        let dir = try folder()
        let good = dir + "/good.snap"
        _ = try saveDirtyGuest(to: good)
        let bytes = try Data(contentsOf: URL(fileURLWithPath: good))
        func flipped(_ offset: Int) -> Data {
            var copy = bytes
            copy[offset] ^= 0x40
            return copy
        }
        // A page the guest wrote: the first page of its swept range, 4 MiB into RAM.
        let dataPage = 4096 + (4 << 20) + 100
        let cases: [(name: String, contents: Data?, extra: [String], message: String)] = [
            ("truncated.snap", bytes.prefix(bytes.count - 100), [], "the file was cut short"),
            ("header-only.snap", bytes.prefix(20), [], "is incomplete"),
            ("header.snap", flipped(17), [], "its header does not match its digest"),
            ("trailer.snap", flipped(bytes.count - 200), [], "is corrupt"),
            ("longer.snap", bytes + Data(count: 10), [], "bytes after its end"),
            ("page.snap", flipped(dataPage), ["-mem-prealloc"], "does not match its digest"),
            ("good.snap", nil, ["-m", "128M"], "RAM size differs"),
        ]
        for item in cases {
            let path = dir + "/" + item.name
            if let contents = item.contents { try contents.write(to: URL(fileURLWithPath: path)) }
            let run = try runSwiftKVM(dirtyArgs() + item.extra + ["-incoming", "file:\(path)"], stdin: "info status\n", seconds: 30)
            XCTAssertEqual(run.status, 1, "\(item.name): \(run.stderr)")
            XCTAssertTrue(run.stderr.contains(item.message), "\(item.name): \(run.stderr)")
            XCTAssertTrue(run.stderr.contains("the guest was not started"), "\(item.name): \(run.stderr)")
            XCTAssertFalse(run.stdout.contains("sweep"), "\(item.name): the guest ran: \(run.stdout)")
        }
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: good)), bytes, "restoring never changes the file")
    }

    func testMappedRAMNeedsAFileURI() throws {
        let run = try runSwiftKVM(["-m", "64M", "-kernel", Paths.guest("hello.elf"), "-serial", "null"],
                                  stdin: "migrate_set_capability mapped-ram on\ninfo migrate_capabilities\nmigrate tcp:127.0.0.1:\(freeLoopbackPort())\nquit\n",
                                  seconds: 30)
        XCTAssertTrue(run.stdout.contains("mapped-ram: on"), run.stdout)
        XCTAssertTrue(run.stderr.contains("mapped-ram migration needs a file: URI"), run.stderr)
    }
}
