import Glibc
import SystemSupport
import XCTest

final class FileContentsTests: XCTestCase {
    private func temporaryFile(_ bytes: [UInt8]) throws -> String {
        var template = Array("/tmp/swiftkvm-filecontents-XXXXXX".utf8CString)
        let fd = mkstemp(&template)
        XCTAssertGreaterThanOrEqual(fd, 0)
        defer { close(fd) }
        XCTAssertEqual(bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }, bytes.count)
        return String(cString: template)
    }

    func testAMappedFileReadsItsBytesAndIsRefusedOnceCutShorter() throws {
        let bytes = (0..<10_000).map { UInt8(truncatingIfNeeded: $0 * 7) }
        let path = try temporaryFile(bytes)
        defer { unlink(path) }
        let contents = try FileContents(path: path, limit: 1 << 20)
        XCTAssertEqual(Array(contents), bytes)
        XCTAssertEqual(try contents.withUnsafeBytes(100..<110) { Array($0) }, Array(bytes[100..<110]))
        // A kernel replaced in place while the guest runs: its reset must fail with the reason,
        // not touch a page past the new end (SIGBUS).
        XCTAssertEqual(truncate(path, 100), 0)
        XCTAssertThrowsError(try contents.withUnsafeBytes(0..<10) { _ in }) { error in
            XCTAssertEqual(error as? HostFile.ReadError, .shrunk(size: 100, was: 10_000))
            XCTAssertEqual("\(error)", "the file is 100 bytes now, 10000 when swiftkvm started: it was changed while in use")
        }
    }

    func testLimitsAndWhatIsNotAFile() throws {
        let path = try temporaryFile([UInt8](repeating: 1, count: 5000))
        defer { unlink(path) }
        XCTAssertThrowsError(try FileContents(path: path, limit: 4096)) { error in
            XCTAssertEqual(error as? HostFile.ReadError, .tooLarge(size: 5000, limit: 4096))
        }
        XCTAssertThrowsError(try FileContents(path: "/tmp", limit: 4096)) { error in
            XCTAssertEqual(error as? HostFile.ReadError, .readFailed(errno: EISDIR))
        }
        XCTAssertThrowsError(try FileContents(path: "/nonexistent/kernel", limit: 4096)) { error in
            XCTAssertEqual(error as? HostFile.ReadError, .cannotOpen(errno: ENOENT))
        }
        let empty = try temporaryFile([])
        defer { unlink(empty) }
        XCTAssertEqual(try FileContents(path: empty, limit: 4096).count, 0)
    }
}
