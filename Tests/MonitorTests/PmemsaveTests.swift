import Glibc
import XCTest
@testable import Monitor

final class PmemsaveTests: XCTestCase {
    private var backend: FakeMonitorBackend!
    private var monitor: CommandInterpreter!
    private var directory = ""

    override func setUpWithError() throws {
        backend = FakeMonitorBackend(ramSize: 3 << 20)
        monitor = CommandInterpreter(backend: backend)
        directory = FileManagerLite.makeTemporaryDirectory()
    }

    override func tearDown() {
        if let entries = try? FileManagerLite.list(directory) {
            for name in entries { unlink(directory + "/" + name) }
        }
        rmdir(directory)
    }

    func testWritesExactlyTheRequestedBytesInChunks() throws {
        let path = directory + "/ram dump"
        let outcome = monitor.execute("pmemsave 0x1001 0x240000 \"\(path)\"")
        XCTAssertEqual(outcome, CommandOutcome())
        let written = try FileManagerLite.read(path)
        XCTAssertEqual(written.count, 0x240000)
        XCTAssertTrue(written == Array(backend.ram[0x1001..<0x241001]))
        XCTAssertLessThanOrEqual(backend.largestRead, 1 << 20)
    }

    func testSizeSuffixAndTruncatesAnOldFile() throws {
        let path = directory + "/small"
        XCTAssertNil(monitor.execute("pmemsave 0 1M \(path)").error)
        XCTAssertNil(monitor.execute("pmemsave 16 4K \(path)").error)
        XCTAssertEqual(try FileManagerLite.read(path), Array(backend.ram[16..<4112]))
    }

    func testZeroSizeMakesAnEmptyFile() throws {
        let path = directory + "/empty"
        XCTAssertNil(monitor.execute("pmemsave 0 0 \(path)").error)
        XCTAssertEqual(try FileManagerLite.read(path), [])
    }

    func testRangeOutsideRAMIsRefusedAndLeavesNoFile() {
        let path = directory + "/outside"
        let error = monitor.execute("pmemsave 0x2fff00 0x200 \(path)").error ?? ""
        XCTAssertTrue(error.hasPrefix("cannot read guest memory 0x2fff00..+512 bytes"), error)
        XCTAssertFalse(error.contains("Try \"help"), error)
        XCTAssertNotEqual(access(path, F_OK), 0)
        XCTAssertNotNil(monitor.execute("pmemsave 0x10000000 1 \(path)").error)
        XCTAssertNotEqual(access(path, F_OK), 0)
    }

    func testRangeWrappingTheAddressSpaceIsRefused() {
        let error = monitor.execute("pmemsave 0xffffffffffffff00 0x200 \(directory)/wrap").error ?? ""
        XCTAssertTrue(error.hasPrefix("range 0xffffffffffffff00 + 512 bytes runs past the end"), error)
    }

    func testUnwritableFileNamesTheFileAndErrno() {
        let path = directory + "/no/such/dir/file"
        XCTAssertEqual(monitor.execute("pmemsave 0 16 \(path)").error,
                       "cannot write '\(path)': No such file or directory")
    }

    private func writeFile(_ path: String, _ bytes: [UInt8]) {
        let file = fopen(path, "wb")
        _ = bytes.withUnsafeBytes { fwrite($0.baseAddress, 1, $0.count, file) }
        fclose(file)
    }

    func testAFailedSaveLeavesTheEarlierFileAndNoTemporaryFile() throws {
        let path = directory + "/kept"
        let earlier = Array("the earlier dump".utf8)
        writeFile(path, earlier)
        // Outside RAM: refused before anything is written.
        XCTAssertNotNil(monitor.execute("pmemsave 0x2fff00 0x200 \(path)").error)
        XCTAssertEqual(try FileManagerLite.read(path), earlier)
        // A read that fails in the middle of the copy (both ends are readable).
        var chunks = 0
        XCTAssertThrowsError(try GuestMemorySaver.save(address: 0, size: 3 << 20, to: path) { address, count in
            if count > 1 { chunks += 1 }
            if chunks == 2 { throw FakeMonitorBackend.Refused() }
            return try self.backend.readPhysical(address, count: count)
        })
        XCTAssertEqual(chunks, 2)
        XCTAssertEqual(try FileManagerLite.read(path), earlier)
        XCTAssertEqual(try FileManagerLite.list(directory), ["kept"], "the temporary file was left behind")
        // A save that succeeds replaces it, mode 0600 (guest memory).
        XCTAssertNil(monitor.execute("pmemsave 0 4K \(path)").error)
        XCTAssertEqual(try FileManagerLite.read(path), Array(backend.ram[0..<4096]))
        var info = stat()
        XCTAssertEqual(stat(path, &info), 0)
        XCTAssertEqual(info.st_mode & 0o777, 0o600)
        XCTAssertEqual(try FileManagerLite.list(directory), ["kept"])
    }

    func testMemsaveReadsVirtualMemory() throws {
        let path = directory + "/virtual"
        let address = FakeMonitorBackend.virtualBase + 0x2000
        XCTAssertNil(monitor.execute("memsave 0x\(String(address, radix: 16)) 100 \(path)").error)
        XCTAssertEqual(try FileManagerLite.read(path), Array(backend.ram[0x2000..<0x2064]))
    }
}

/// Just enough file access for these tests, through Glibc.
enum FileManagerLite {
    struct Failure: Error { var path: String }

    static func makeTemporaryDirectory() -> String {
        let path = "/tmp/monitor-tests-\(getpid())-\(UInt64.random(in: 0...UInt64.max))"
        mkdir(path, 0o700)
        return path
    }

    static func read(_ path: String) throws -> [UInt8] {
        guard let file = fopen(path, "rb") else { throw Failure(path: path) }
        defer { fclose(file) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = fread(&buffer, 1, buffer.count, file)
            if count == 0 { break }
            bytes += buffer[0..<count]
        }
        return bytes
    }

    static func list(_ path: String) throws -> [String] {
        guard let dir = opendir(path) else { throw Failure(path: path) }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }
}
