import Foundation
import Glibc
import XCTest

/// Same-host handoff: guest RAM in a memfd (`-object memory-backend-memfd`), and a `unix:`
/// migration with x-ignore-shared that passes the memfd instead of the pages.
final class SharedMemoryHandoffTests: XCTestCase {
    let memfd = ["-object", "memory-backend-memfd,id=mem0,size=256M,share=on", "-machine", "memory-backend=mem0"]

    func dirtyArgs() -> [String] {
        memfd + ["-kernel", Paths.guest("dirty.elf"), "-append", "base=4M size=96M every=64",
                 "-device", "isa-debug-exit,iobase=0xf4,iosize=0x04"]
    }

    func sweepNumbers(_ text: String) -> [Int] {
        text.components(separatedBy: "sweep ").dropFirst().compactMap { Int($0.prefix { $0.isNumber }) }
    }

    func testDirtyGuestIsHandedOverWithoutItsPagesAndKeepsCheckingMemory() throws {
        let socket = Paths.temporary(self, "handoff.sock")
        let dst = try SwiftKVMProcess(dirtyArgs() + ["-incoming", "unix:\(socket)"])
        defer { dst.kill() }
        let src = try SwiftKVMProcess(dirtyArgs())
        defer { src.kill() }
        XCTAssertTrue(src.waitForOutput("sweep 128"), src.stdout)
        XCTAssertTrue(src.waitFor { _ in FileManager.default.fileExists(atPath: socket) }, "the destination listens")
        src.send("migrate_set_capability x-ignore-shared on\nmigrate unix:\(socket)\ninfo migrate\ninfo status\n")
        XCTAssertTrue(src.waitForOutput("VM status: paused (postmigrate)"), src.stdout + src.stderr)
        let sweepsAtHandoff = sweepNumbers(src.stdout).last ?? 0
        XCTAssertTrue(src.stdout.contains("Migration status: completed"), src.stdout)
        // 96 MiB of data stayed where it was: only the state went over the socket.
        let transferred = src.stdout.components(separatedBy: "transferred ram: ").last.flatMap { Int($0.prefix { $0.isNumber }) } ?? -1
        XCTAssertGreaterThanOrEqual(transferred, 0, src.stdout)
        XCTAssertLessThan(transferred, 1024, "kbytes sent: \(src.stdout)")

        XCTAssertTrue(dst.waitForStderr("incoming migration completed (guest RAM handed over as shared memory)"), dst.stderr)
        XCTAssertTrue(dst.waitFor { self.sweepNumbers($0).count >= 20 }, dst.stdout)
        XCTAssertGreaterThanOrEqual(sweepNumbers(dst.stdout).first ?? 0, sweepsAtHandoff, dst.stdout)

        // The source let go of the memory: resetting it cannot touch the guest on the destination.
        src.send("xp /2xg 0x400000\nsystem_reset\ninfo status\n")
        XCTAssertTrue(src.waitForOutput("0000000000400000: 0x0000000000000000 0x0000000000000000"), src.stdout)
        let before = sweepNumbers(dst.stdout).count
        XCTAssertTrue(dst.waitFor { self.sweepNumbers($0).count >= before + 10 }, dst.stdout)
        dst.send("info status\n")
        XCTAssertTrue(dst.waitForOutput("VM status: running"), dst.stdout)
        dst.kill()
        XCTAssertFalse(dst.stdout.contains("MISMATCH"), dst.stdout)
        XCTAssertFalse(dst.stdout.contains("dirty: base="), "the guest continued, it did not boot again: \(dst.stdout)")
    }

    func testHandoffNeedsAUnixSocketAndTheGuestRunsOn() throws {
        let port = freeLoopbackPort()
        let dst = try SwiftKVMProcess(dirtyArgs() + ["-incoming", "tcp:127.0.0.1:\(port)"])
        defer { dst.kill() }
        let src = try SwiftKVMProcess(dirtyArgs())
        defer { src.kill() }
        XCTAssertTrue(src.waitForOutput("sweep 64"), src.stdout)
        src.send("migrate_set_capability x-ignore-shared on\nmigrate tcp:127.0.0.1:\(port)\ninfo status\n")
        XCTAssertTrue(src.waitForOutput("VM status: running"), src.stdout + src.stderr)
        XCTAssertTrue((src.stdout + src.stderr).contains("x-ignore-shared hands shared memory over as a file descriptor, which needs a unix: migration (without TLS)"),
                      src.stdout + src.stderr)
        let before = sweepNumbers(src.stdout).count
        XCTAssertTrue(src.waitFor { self.sweepNumbers($0).count >= before + 5 }, src.stdout)
    }

    func testMemoryBackendOptionsAreChecked() throws {
        let cases: [(arguments: [String], message: String)] = [
            (["-machine", "memory-backend=nope"], "-machine memory-backend=nope: no -object memory-backend-memfd with id=nope"),
            (memfd + ["-m", "128M"], "-m 128M differs from the size of memory-backend mem0 (256M)"),
            (["-object", "memory-backend-memfd,id=m,size=64M,share=off", "-machine", "memory-backend=m"], "a memfd backend is always shared"),
            (["-object", "memory-backend-file,id=m,size=64M"], "of the memory backends only memory-backend-memfd is available"),
        ]
        for item in cases {
            let run = try runSwiftKVM(item.arguments + ["-kernel", Paths.guest("hello.elf")], seconds: 30)
            XCTAssertEqual(run.status, 1, "\(item.arguments): \(run.stderr)")
            XCTAssertTrue(run.stderr.contains(item.message), "\(item.arguments): \(run.stderr)")
        }
    }
}
