import Glibc
@testable import Machine
import SystemSupport
import XCTest

final class BootErrorTests: XCTestCase {
    private func tempFile(_ bytes: [UInt8]) -> String {
        let path = "/tmp/swiftkvm-boot-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let f = fopen(path, "wb")!
        _ = bytes.withUnsafeBytes { fwrite($0.baseAddress, 1, bytes.count, f) }
        fclose(f)
        addTeardownBlock { unlink(path) }
        return path
    }

    private func bootError(_ source: BootSource, ram: UInt64 = 128 << 20) -> BootError? {
        do { _ = try BootImage(source, ramSize: ram); return nil } catch { return error as? BootError }
    }

    func testMissingFile() {
        let error = bootError(.kernel(path: "/nonexistent/k.elf", commandLine: ""))
        guard case .cannotRead(let path, let cause)? = error else { return XCTFail() }
        XCTAssertEqual(path, "/nonexistent/k.elf")
        XCTAssertEqual(cause, .cannotOpen(errno: ENOENT))
        XCTAssertEqual(error?.underlyingErrno, ENOENT)
        XCTAssertEqual(error?.description, "cannot read '/nonexistent/k.elf': No such file or directory")
    }

    func testNeitherELFNorBootSector() {
        let path = tempFile(Array("hello, I am a text file".utf8))
        XCTAssertEqual(bootError(.kernel(path: path, commandLine: "")), .notKernel(path: path))
        XCTAssertEqual(bootError(.bootSector(path: path)), .bootSectorTooShort(path: path, size: 23))
        let noSignature = tempFile([UInt8](repeating: 0x90, count: 512))
        XCTAssertEqual(bootError(.bootSector(path: noSignature)), .noBootSignature(path: noSignature))
    }

    func testBootSectorGivenAsKernelGetsAHint() {
        XCTAssertEqual(bootError(.kernel(path: GuestImages.path("bootsector.img"), commandLine: "")),
                       .looksLikeBootSector(path: GuestImages.path("bootsector.img")))
    }

    func testELFWithoutPVHNote() throws {
        // /bin/true is an x86-64 ELF without Xen notes.
        XCTAssertEqual(bootError(.kernel(path: "/bin/true", commandLine: "")), .noPVHNote(path: "/bin/true"))
    }

    func testSegmentOutsideRAM() {
        guard case .segmentOutsideRAM? = bootError(.kernel(path: GuestImages.path("hello.elf"), commandLine: ""), ram: 1 << 20) else {
            return XCTFail("a 1 MiB machine cannot hold a kernel linked at 1 MiB")
        }
    }

    func testTruncatedELFIsRejectedNotTrapped() throws {
        let bytes = try HostFileBytes.read(GuestImages.path("hello.elf"))
        for cut in stride(from: 4, to: min(bytes.count, 400), by: 7) {
            let path = tempFile(Array(bytes[0..<cut]))
            XCTAssertNotNil(bootError(.kernel(path: path, commandLine: "")), "cut at \(cut) should not boot")
        }
    }

    func testCommandLineLimit() {
        let long = String(repeating: "a", count: 5000)
        XCTAssertEqual(bootError(.kernel(path: GuestImages.path("hello.elf"), commandLine: long)),
                       .commandLineTooLong(length: 5000, limit: BootImage.commandLineLimit))
    }

    func testStartInfoLayout() {
        let info = PVHStartInfo.startInfo(commandLineAddress: 0x7000, memoryMapAddress: 0x6100, memoryMapEntries: 2)
        XCTAssertEqual(info.count, 56)
        XCTAssertEqual(Array(info[0..<4]), [0x78, 0xc5, 0x6e, 0x33])
        XCTAssertEqual(info[24], 0x00); XCTAssertEqual(info[25], 0x70)
        XCTAssertEqual(info[40], 0x00); XCTAssertEqual(info[41], 0x61)
        XCTAssertEqual(info[48], 2)
        XCTAssertEqual(RAMLayout.ranges(forSize: 4 << 30), [.init(guestAddress: 0, size: 3 << 30), .init(guestAddress: 4 << 30, size: 1 << 30)])
    }
}

enum HostFileBytes {
    static func read(_ path: String) throws -> [UInt8] { Array(try Data(contentsOf: URL(fileURLWithPath: path))) }
}
