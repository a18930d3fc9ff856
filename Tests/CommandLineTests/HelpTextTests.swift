import XCTest
@testable import swiftkvm

/// `-h` and the README's "Command line" table come from one table of options.
final class HelpTextTests: XCTestCase {
    func testTheReadmeListsTheOptionsAsTheHelpDoes() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let readme = try String(contentsOf: root.appendingPathComponent("README.md"), encoding: .utf8)
        XCTAssertTrue(readme.contains("\n" + CommandLineParser.markdownTable + "\n"),
                      "README.md's option table differs from the code's; put this in its place:\n" + CommandLineParser.markdownTable)
    }

    func testEveryOptionIsInTheHelpWithItsWords() {
        for option in CommandLineParser.options {
            XCTAssertTrue(CommandLineParser.usage.contains("-" + option.names[0]), option.names[0])
            XCTAssertTrue(CommandLineParser.usage.contains(option.help), option.help)
        }
        XCTAssertTrue(CommandLineParser.usage.contains("file:PATH|exec:CMD"), "-incoming lists file:PATH")
        XCTAssertTrue(CommandLineParser.usage.contains("B, K, M, G, T, P or E"))
    }
}
