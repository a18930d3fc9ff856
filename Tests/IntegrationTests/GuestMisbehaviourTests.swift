import Foundation
import XCTest

/// A guest can do anything: flood its console, poke every port, touch unmapped memory, spin
/// with interrupts off. The monitor must keep answering, memory must stay bounded, quit works.
final class GuestMisbehaviourTests: XCTestCase {
    func assertStaysResponsive(mode: String, marker: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let p = try SwiftKVMProcess(["-m", "64M", "-kernel", Paths.guest("faults.elf"), "-append", "mode=\(mode)"])
        XCTAssertTrue(p.waitForOutput(marker), "mode \(mode): \(p.stdout.suffix(500))", file: file, line: line)
        usleep(500_000)
        for round in 1...3 {
            p.send("info status\n")
            XCTAssertTrue(p.waitForOutput("VM status: running", count: round, seconds: 10),
                          "mode \(mode): the monitor must answer", file: file, line: line)
        }
        // Guest RAM (64 MiB) plus the VMM: a flood or a log storm must not grow it without bound.
        XCTAssertLessThan(p.residentKiB / 1024, 64 + 100, "mode \(mode)", file: file, line: line)
        p.send("quit\n")
        XCTAssertEqual(p.waitForExit(seconds: 10), 0, "mode \(mode): quit must work", file: file, line: line)
    }

    func testConsoleFlood() throws { try assertStaysResponsive(mode: "flood", marker: "flood 1000") }
    func testEveryPort() throws { try assertStaysResponsive(mode: "ports", marker: "faults: ports done") }
    func testUnmappedMemory() throws { try assertStaysResponsive(mode: "mmio", marker: "faults: mmio pass 2") }
    func testSpinWithInterruptsOff() throws { try assertStaysResponsive(mode: "cli-spin", marker: "faults: mode=cli-spin") }

    func testUnknownPortsAreReportedOncePerPort() throws {
        let p = try SwiftKVMProcess(["-m", "64M", "-kernel", Paths.guest("faults.elf"), "-append", "mode=ports"])
        XCTAssertTrue(p.waitForOutput("faults: ports done", seconds: 120), p.stdout.suffix(300) + "")
        p.send("quit\n")
        _ = p.waitForExit()
        let reports = p.stderr.split(separator: "\n").filter { $0.contains("unknown I/O port 0x4f0 ") || $0.hasSuffix("unknown I/O port 0x4f0 (reported once per port)") }
        XCTAssertEqual(reports.count, 1, "port 0x4f0 is read and written many times but reported once")
    }

    func testUnmappedMemoryIsReportedOncePerPage() throws {
        let p = try SwiftKVMProcess(["-m", "64M", "-kernel", Paths.guest("faults.elf"), "-append", "mode=mmio"])
        XCTAssertTrue(p.waitForOutput("faults: mmio pass 2"), p.stdout.suffix(300) + "")
        p.send("quit\n")
        _ = p.waitForExit()
        let reports = p.stderr.split(separator: "\n").filter { $0.contains("unmapped memory at 0x") }
        XCTAssertEqual(reports.count, 2, "two pages are read and written many times, each reported once: \(reports)")
        XCTAssertTrue(reports.contains { $0.contains("unmapped memory at 0xd0000000 ") }, "\(reports)")
    }
}
