import Glibc
import SystemSupport
import XCTest

final class FileIOTests: XCTestCase {
    func testAPipeReadsBytesThenWouldBlockThenEndOfFile() throws {
        let (reader, writer) = try FileIO.makePipe()
        defer { FileIO.close(reader) }
        XCTAssertEqual(FileIO.read(reader), .wouldBlock)
        XCTAssertEqual(FileIO.writeSome(writer, [1, 2, 3][...], isSocket: false), 3)
        XCTAssertEqual(FileIO.read(reader, upTo: 2), .bytes([1, 2]))
        XCTAssertEqual(FileIO.read(reader), .bytes([3]))
        FileIO.close(writer)
        XCTAssertEqual(FileIO.read(reader), .endOfFile)
        XCTAssertEqual(FileIO.read(-1), .failed(EBADF))
        XCTAssertNil(FileIO.writeSome(-1, [1][...], isSocket: false))
    }
}
