import XCTest
@testable import swiftkvm

func parse(_ arguments: String...) throws -> Configuration {
    try CommandLineParser.parse(arguments)
}

func XCTAssertOptionError(_ arguments: [String], _ expected: OptionError, file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertThrowsError(try CommandLineParser.parse(arguments), file: file, line: line) { error in
        XCTAssertEqual(error as? OptionError, expected, file: file, line: line)
    }
}

/// Asserts the parse fails with a one-line message starting `swiftkvm: ` that contains `fragment`.
func XCTAssertOptionMessage(_ arguments: [String], contains fragment: String, file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertThrowsError(try CommandLineParser.parse(arguments), file: file, line: line) { error in
        let message = "\(error)"
        XCTAssertTrue(error is OptionError, "\(error)", file: file, line: line)
        XCTAssertTrue(message.hasPrefix("swiftkvm: "), message, file: file, line: line)
        XCTAssertFalse(message.contains("\n"), message, file: file, line: line)
        XCTAssertTrue(message.contains(fragment), "'\(message)' lacks '\(fragment)'", file: file, line: line)
    }
}
