import XCTest
@testable import Monitor

final class ConsoleLineSplitterTests: XCTestCase {
    func testLinesSplitAcrossReadsAndCarriageReturnsDropped() {
        var splitter = LineSplitter()
        XCTAssertEqual(splitter.feed(Array("info st".utf8)), [])
        XCTAssertEqual(splitter.feed(Array("atus\r\nstop\n".utf8)), [.line("info status"), .line("stop")])
        XCTAssertEqual(splitter.finish(), [])
    }

    func testLastLineWithoutNewlineCountsAtTheEnd() {
        var splitter = LineSplitter()
        XCTAssertEqual(splitter.feed(Array("a\nquit".utf8)), [.line("a")])
        XCTAssertEqual(splitter.finish(), [.line("quit")])
    }

    func testOverlongLineIsReportedAndTheNextLineIsIntact() {
        var splitter = LineSplitter(maxLineBytes: 4)
        XCTAssertEqual(splitter.feed(Array("abcd\nabcdefg\nok\n".utf8)),
                       [.line("abcd"), .tooLong(byteCount: 7), .line("ok")])
    }

    func testOverlongLastLineWithoutNewline() {
        var splitter = LineSplitter(maxLineBytes: 2)
        XCTAssertEqual(splitter.feed(Array("abc".utf8)), [])
        XCTAssertEqual(splitter.finish(), [.tooLong(byteCount: 3)])
    }
}
