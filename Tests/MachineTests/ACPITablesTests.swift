import Devices
import Foundation
@testable import Machine
import XCTest

final class ACPITablesTests: XCTestCase {
    private func u32(_ b: [UInt8], _ at: Int) -> UInt32 { (0..<4).reduce(0) { $0 | UInt32(b[at + $1]) << (8 * $1) } }
    private func u64(_ b: [UInt8], _ at: Int) -> UInt64 { (0..<8).reduce(0) { $0 | UInt64(b[at + $1]) << (8 * $1) } }
    private func sum(_ b: ArraySlice<UInt8>) -> UInt8 { b.reduce(0, &+) }

    /// The table at a guest-physical address inside the blob, by its header's length.
    private func table(_ set: FirmwareTables, at address: UInt64) -> [UInt8] {
        let offset = Int(address - set.address)
        let length = Int(u32(set.bytes, offset + 4))
        return Array(set.bytes[offset..<offset + length])
    }

    private func signature(_ t: [UInt8]) -> String { String(decoding: t[0..<4], as: UTF8.self) }

    func testLayoutAndChecksums() {
        let set = ACPITables.build(vcpuCount: 3)
        XCTAssertEqual(set.address, 0xe_0000)
        XCTAssertEqual(set.rootPointer, 0xe_0000)
        XCTAssertLessThanOrEqual(set.bytes.count, ACPITables.areaSize)
        let rsdp = Array(set.bytes[0..<36])
        XCTAssertEqual(String(decoding: rsdp[0..<8], as: UTF8.self), "RSD PTR ")
        XCTAssertEqual(sum(rsdp[0..<20]), 0, "RSDP checksum")
        XCTAssertEqual(sum(rsdp[...]), 0, "RSDP extended checksum")
        XCTAssertEqual(rsdp[15], 2, "revision")
        XCTAssertEqual(set.rootPointer % 16, 0, "found by Linux's 16-byte scan")

        let xsdt = table(set, at: u64(rsdp, 24))
        XCTAssertEqual(signature(xsdt), "XSDT")
        XCTAssertEqual(sum(xsdt[...]), 0)
        let pointed = stride(from: 36, to: xsdt.count, by: 8).map { table(set, at: u64(xsdt, $0)) }
        XCTAssertEqual(pointed.map(signature), ["FACP", "APIC"])
        for t in pointed { XCTAssertEqual(sum(t[...]), 0, signature(t)) }

        let fadt = pointed[0]
        XCTAssertEqual(fadt.count, 276)
        XCTAssertEqual(UInt16(fadt[46]) | UInt16(fadt[47]) << 8, 9, "SCI_INT")
        XCTAssertEqual(u32(fadt, 56), UInt32(ACPIPM.base), "PM1a_EVT_BLK")
        XCTAssertEqual(u32(fadt, 64), UInt32(ACPIPM.base) + 4, "PM1a_CNT_BLK")
        XCTAssertEqual(fadt[88], 4); XCTAssertEqual(fadt[89], 2)
        XCTAssertEqual(u32(fadt, 112) & (1 << 20), 0, "not hardware-reduced")
        XCTAssertEqual(u32(fadt, 112) & (1 << 4), 0, "fixed-feature power button")
        XCTAssertEqual(fadt[116], 1, "reset register in I/O space")
        XCTAssertEqual(u64(fadt, 120), 0x64); XCTAssertEqual(fadt[128], 0xfe)
        let facsAddress = UInt64(u32(fadt, 36))
        XCTAssertEqual(facsAddress % 64, 0)
        let facsOffset = Int(facsAddress - set.address)
        XCTAssertEqual(String(decoding: set.bytes[facsOffset..<facsOffset + 4], as: UTF8.self), "FACS")
        let dsdt = table(set, at: UInt64(u32(fadt, 40)))
        XCTAssertEqual(signature(dsdt), "DSDT")
        XCTAssertEqual(sum(dsdt[...]), 0)

        let madt = pointed[1]
        XCTAssertEqual(u32(madt, 36), 0xfee0_0000)
        var entries: [(type: UInt8, bytes: [UInt8])] = []
        var at = 44
        while at < madt.count {
            let length = Int(madt[at + 1])
            XCTAssertGreaterThan(length, 0)
            entries.append((madt[at], Array(madt[at..<at + length])))
            at += length
        }
        XCTAssertEqual(at, madt.count, "entries fill the table exactly")
        let lapics = entries.filter { $0.type == 0 }
        XCTAssertEqual(lapics.map { $0.bytes[3] }, [0, 1, 2], "one enabled LAPIC per vCPU")
        XCTAssertTrue(lapics.allSatisfy { $0.bytes[4] & 1 == 1 })
        let ioapic = entries.first { $0.type == 1 }!.bytes
        XCTAssertEqual(u32(ioapic, 4), 0xfec0_0000)
        let overrides = entries.filter { $0.type == 2 }.map { (source: $0.bytes[3], gsi: u32($0.bytes, 4), flags: UInt16($0.bytes[8]) | UInt16($0.bytes[9]) << 8) }
        XCTAssertEqual(overrides.map(\.source), [0, 9])
        XCTAssertEqual(overrides[0].gsi, 2)
        XCTAssertEqual(overrides[1].gsi, 9)
        XCTAssertEqual(overrides[1].flags & 0xc, 0xc, "SCI level-triggered")
    }

    func testAMLEncodings() {
        XCTAssertEqual(AML.eisaID("PNP0501"), [0x0c, 0x41, 0xd0, 0x05, 0x01])
        XCTAssertEqual(AML.packageLength(10), [11])
        XCTAssertEqual(AML.packageLength(62), [63])
        XCTAssertEqual(AML.packageLength(63), [0x41, 0x04], "65 = 0x41: lead nibble 1, next byte 4")
        XCTAssertEqual(AML.packageLength(4093), [0x4f, 0xff])
        XCTAssertEqual(AML.packageLength(4094), [0x81, 0x00, 0x01], "4097 = 0x1001 needs a third length byte")
        XCTAssertEqual(AML.nameString("\\_SB"), [0x5c, 0x5f, 0x53, 0x42, 0x5f])
        XCTAssertEqual(AML.integer(0x1234), [0x0b, 0x34, 0x12])
        XCTAssertEqual(ACPITables.cpuName(10), "C00A")
    }

    /// Debian's iasl (acpica-tools, installed by scripts/test) disassembles every table without
    /// an error, a warning or a wrong checksum.
    func testIASLDisassemblesEveryTableCleanly() throws {
        let set = ACPITables.build(vcpuCount: 2)
        let rsdp = Array(set.bytes[0..<36])
        let xsdt = table(set, at: u64(rsdp, 24))
        let fadt = table(set, at: u64(xsdt, 36))
        let tables = [("xsdt", xsdt), ("facp", fadt), ("apic", table(set, at: u64(xsdt, 44))),
                      ("dsdt", table(set, at: UInt64(u32(fadt, 40))))]
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("swiftkvm-acpi-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        for (name, bytes) in tables {
            let file = dir.appendingPathComponent("\(name).dat")
            try Data(bytes).write(to: file)
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/iasl")
            process.arguments = ["-d", file.path]
            process.currentDirectoryURL = dir
            let pipe = Pipe()
            process.standardOutput = pipe
            process.standardError = pipe
            XCTAssertNoThrow(try process.run(), "iasl missing: scripts/test installs acpica-tools")
            let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            process.waitUntilExit()
            XCTAssertEqual(process.terminationStatus, 0, "\(name): \(output)")
            let dsl = (try? String(contentsOf: dir.appendingPathComponent("\(name).dsl"), encoding: .utf8)) ?? ""
            XCTAssertFalse(dsl.isEmpty, "\(name): no disassembly\n\(output)")
            for bad in ["Error", "Warning", "Incorrect", "Invalid", "Unknown"] {
                XCTAssertFalse(output.contains(bad) || dsl.contains(bad), "\(name): iasl says \(bad)\n\(output)\n\(dsl)")
            }
            if name == "dsdt" {
                for expected in ["Name (\\_S5, Package (0x04)", "PNP0501", "PNP0303", "ACPI0007", "IO (Decode16,"] {
                    XCTAssertTrue(dsl.contains(expected), "DSDT lacks \(expected):\n\(dsl)")
                }
            }
        }
    }
}
