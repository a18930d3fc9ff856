import XCTest
@testable import Monitor

final class TokenizerTests: XCTestCase {
    private func words(_ line: String) throws -> [String] {
        try CommandLineTokenizer.tokenize(line).map(\.text)
    }

    func testSplitsOnRunsOfBlanks() throws {
        XCTAssertEqual(try words("  pmemsave\t0   4096 /tmp/a  "), ["pmemsave", "0", "4096", "/tmp/a"])
    }

    func testQuotedWordKeepsSpaces() throws {
        XCTAssertEqual(try words(#"pmemsave 0 4096 "/tmp/ram dump""#), ["pmemsave", "0", "4096", "/tmp/ram dump"])
    }

    func testEscapesInsideQuotes() throws {
        XCTAssertEqual(try words(#"x "a\"b\\c\'d\ne\rf""#), ["x", "a\"b\\c'd\ne\rf"])
    }

    func testEmptyQuotedWord() throws {
        let tokens = try CommandLineTokenizer.tokenize(#"a "" b"#)
        XCTAssertEqual(tokens.map(\.text), ["a", "", "b"])
        XCTAssertEqual(tokens.map(\.quoted), [false, true, false])
    }

    func testUnterminatedQuoteIsAnError() {
        XCTAssertThrowsError(try words(#"pmemsave 0 1 "/tmp/x"#)) { error in
            XCTAssertEqual(error as? MonitorError, .unterminatedQuote)
        }
        XCTAssertThrowsError(try words(#"a "ends in backslash\"#))
    }

    func testUnknownEscapeIsAnError() {
        XCTAssertThrowsError(try words(#"a "\q""#)) { error in
            XCTAssertEqual(error as? MonitorError, .unsupportedEscape("q"))
        }
    }

    func testBackslashOutsideQuotesIsLiteral() throws {
        XCTAssertEqual(try words(#"a b\c"#), ["a", #"b\c"#])
    }

    func testOffsetsAreUTF8Bytes() throws {
        let tokens = try CommandLineTokenizer.tokenize("é ab")
        XCTAssertEqual(tokens.map(\.start), [0, 3])
        XCTAssertEqual(tokens.map(\.end), [2, 5])
    }

    func testLenientFormAcceptsOpenQuote() {
        let tokens = CommandLineTokenizer.tokenizeLeniently(Array(#"pmemsave 0 1 "/tmp/my fi"#.utf8))
        XCTAssertEqual(tokens.last?.text, "/tmp/my fi")
    }
}
