import Foundation
import XCTest

/// The guest images in guests/build are committed so that tests and users need no assembler;
/// these tests make sure they are what their sources build to, and that they have the shape
/// the VMM's loaders expect.
final class GuestImageTests: XCTestCase {
    private static let imageNames = ["hello.elf", "dirty.elf", "smp.elf", "faults.elf", "bootsector.img"]

    private var guestsDirectory: URL {
        URL(fileURLWithPath: #filePath)
            .deletingLastPathComponent()  // IntegrationTests
            .deletingLastPathComponent()  // Tests
            .deletingLastPathComponent()  // repository root
            .appendingPathComponent("guests")
    }

    func testCommittedImagesMatchARebuildFromSource() throws {
        let output = FileManager.default.temporaryDirectory
            .appendingPathComponent("swiftkvm-guest-images-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: output, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: output) }

        let (status, log) = try run(["make", "-C", guestsDirectory.path, "OUT=\(output.path)"])
        XCTAssertEqual(status, 0, "building the guests failed (are make, as and ld installed?):\n\(log)")
        guard status == 0 else { return }

        for name in Self.imageNames {
            let committed = try Data(contentsOf: guestsDirectory.appendingPathComponent("build/\(name)"))
            let rebuilt = try Data(contentsOf: output.appendingPathComponent(name))
            XCTAssertEqual(
                committed, rebuilt,
                "guests/build/\(name) differs from a fresh build of its sources: run `make -C guests` and commit the result")
        }
    }

    func testBootSectorIsOneSectorWithTheBootSignature() throws {
        let image = try Data(contentsOf: guestsDirectory.appendingPathComponent("build/bootsector.img"))
        XCTAssertEqual(image.count, 512)
        XCTAssertEqual(Array(image.suffix(2)), [0x55, 0xAA])
    }

    func testEveryELFGuestCarriesAPVHEntryNoteInsideItsLoadedImage() throws {
        for name in Self.imageNames where name.hasSuffix(".elf") {
            let elf = try Data(contentsOf: guestsDirectory.appendingPathComponent("build/\(name)"))
            let bytes = [UInt8](elf)
            XCTAssertEqual(Array(bytes.prefix(5)), [0x7F, 0x45, 0x4C, 0x46, 2], "\(name): not an ELF64 file")
            XCTAssertEqual(u16(bytes, 18), 62, "\(name): not an x86-64 executable")
            let programHeaders = Int(u64(bytes, 32))
            let entrySize = Int(u16(bytes, 54))
            let count = Int(u16(bytes, 56))

            var loads: [(address: UInt64, size: UInt64)] = []
            var pvhEntry: UInt64?
            for index in 0..<count {
                let header = programHeaders + index * entrySize
                let type = u32(bytes, header)
                let offset = Int(u64(bytes, header + 8))
                let physicalAddress = u64(bytes, header + 24)
                let fileSize = Int(u64(bytes, header + 32))
                let memorySize = u64(bytes, header + 40)
                if type == 1 { loads.append((physicalAddress, memorySize)) }
                if type == 4 { pvhEntry = pvhEntryNote(bytes, offset, fileSize) ?? pvhEntry }
            }
            let entry = try XCTUnwrap(pvhEntry, "\(name): no Xen PHYS32_ENTRY note")
            XCTAssertTrue(loads.allSatisfy { $0.address >= 0x10_0000 }, "\(name): loads below 1 MiB")
            XCTAssertTrue(
                loads.contains { entry >= $0.address && entry < $0.address + $0.size },
                "\(name): PVH entry 0x\(String(entry, radix: 16)) is outside every loaded segment")
        }
    }

    /// The desc of a note named "Xen" of type 18 (XEN_ELFNOTE_PHYS32_ENTRY) in the segment.
    private func pvhEntryNote(_ bytes: [UInt8], _ start: Int, _ size: Int) -> UInt64? {
        var position = start
        while position + 12 <= start + size {
            let nameSize = Int(u32(bytes, position))
            let descSize = Int(u32(bytes, position + 4))
            let type = u32(bytes, position + 8)
            let name = position + 12
            let desc = name + (nameSize + 3) & ~3
            if type == 18, nameSize == 4, Array(bytes[name..<name + 4]) == Array("Xen\0".utf8), descSize >= 4 {
                return UInt64(u32(bytes, desc))
            }
            position = desc + (descSize + 3) & ~3
        }
        return nil
    }

    private func u16(_ bytes: [UInt8], _ at: Int) -> UInt16 {
        UInt16(bytes[at]) | UInt16(bytes[at + 1]) << 8
    }

    private func u32(_ bytes: [UInt8], _ at: Int) -> UInt32 {
        UInt32(u16(bytes, at)) | UInt32(u16(bytes, at + 2)) << 16
    }

    private func u64(_ bytes: [UInt8], _ at: Int) -> UInt64 {
        UInt64(u32(bytes, at)) | UInt64(u32(bytes, at + 4)) << 32
    }

    private func run(_ arguments: [String]) throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let output = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: output, as: UTF8.self))
    }
}
