import XCTest
@testable import Monitor

final class QMPJSONTests: XCTestCase {
    func testParsesEveryKindOfValueAndKeepsMemberOrder() throws {
        let value = try JSONParser.parse(#" {"b": [1, -2, 3.5, 1e3, true, false, null], "a": "x\"\\\n\u00e9\ud83d\ude00"} "#)
        XCTAssertEqual(value, .object([
            ("b", .array([.integer(1), .integer(-2), .double(3.5), .double(1000), .bool(true), .bool(false), .null])),
            ("a", .string("x\"\\\né😀")),
        ]))
        XCTAssertEqual(value["a"], .string("x\"\\\né😀"))
    }

    func testSerializesCompactlyAndEscapesControlCharacters() {
        let value = JSONValue.object([("k", .string("a\"b\u{01}\n")), ("n", .integer(-5)), ("d", .double(2.5)),
                                      ("e", .array([])), ("o", .emptyObject), ("inf", .double(.infinity))])
        XCTAssertEqual(value.serialized, #"{"k": "a\"b\u0001\n", "n": -5, "d": 2.5, "e": [], "o": {}, "inf": 0}"#)
        XCTAssertEqual(try JSONParser.parse(value.serialized)["k"], .string("a\"b\u{01}\n"))
    }

    func testRejectsMalformedInputWithAnOffset() {
        for bad in ["", "{", "{\"a\" 1}", "{\"a\":}", "[1,]", "01", "\"\u{01}\"", "tru", "{\"a\":1} x", "\"\\ud800\"", "1.", "-", "{'a': 1}"] {
            XCTAssertThrowsError(try JSONParser.parse(bad), bad) { error in
                XCTAssertTrue("\(error)".hasPrefix("JSON parse error, "), "\(error)")
            }
        }
    }

    func testDeepNestingIsAnErrorNotAStackOverflow() {
        let deep = String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000)
        XCTAssertThrowsError(try JSONParser.parse(deep)) { error in
            XCTAssertTrue("\(error)".contains("nesting deeper than \(JSONParser.maxDepth)"), "\(error)")
        }
        XCTAssertNoThrow(try JSONParser.parse(String(repeating: "[", count: 100) + String(repeating: "]", count: 100)))
    }

    func testHugeIntegersBecomeDoubles() throws {
        XCTAssertEqual(try JSONParser.parse("9223372036854775807"), .integer(Int64.max))
        XCTAssertEqual(try JSONParser.parse("18446744073709551616"), .double(18446744073709551616))
        XCTAssertThrowsError(try JSONParser.parse("1e999"))
    }

    func testSplitterFramesMessagesWithoutNewlinesAndIgnoresBracesInStrings() {
        var splitter = QMPStreamSplitter()
        var pieces = splitter.feed(Array(#"{"execute": "a}{"}{"execute":"#.utf8))
        XCTAssertEqual(pieces, [.message(Array(#"{"execute": "a}{"}"#.utf8))])
        pieces = splitter.feed(Array(#" "b\"}"} garbage [1] "#.utf8))
        XCTAssertEqual(pieces, [.message(Array(#"{"execute": "b\"}"}"#.utf8)), .message(Array("garbage".utf8)),
                                .message(Array("[1]".utf8))])
    }

    func testSplitterReportsAnOversizedMessageOnceAndThenStops() {
        var splitter = QMPStreamSplitter(maxMessageBytes: 64)
        let pieces = splitter.feed(Array(("{\"execute\": \"" + String(repeating: "x", count: 100) + "\"}").utf8))
        XCTAssertEqual(pieces, [.tooLong])
        XCTAssertEqual(splitter.feed(Array("{}".utf8)), [])
    }
}
