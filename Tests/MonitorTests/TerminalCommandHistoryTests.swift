import Foundation
import XCTest
@testable import Monitor

final class TerminalCommandHistoryTests: XCTestCase {
    func testHistoryFilePathFromEnvironment() {
        XCTAssertEqual(CommandHistory.defaultPath(environment: ["HOME": "/root"]), "/root/.swiftkvm_history")
        XCTAssertEqual(CommandHistory.defaultPath(environment: ["HOME": "/root", "SWIFTKVM_HISTORY": "/tmp/h"]), "/tmp/h")
        XCTAssertNil(CommandHistory.defaultPath(environment: ["HOME": "/root", "SWIFTKVM_HISTORY": ""]))
        XCTAssertNil(CommandHistory.defaultPath(environment: [:]))
    }

    func testFileKeepsTheLastThousandLinesWithoutRepeats() throws {
        let path = "/tmp/swiftkvm-test-\(getpid())-history"
        defer { unlink(path) }
        let history = CommandHistory(path: path)
        for index in 1...1005 {
            history.add("info status \(index)")
            history.add("info status \(index)")
        }
        let lines = try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(lines.count, 1000)
        XCTAssertEqual(lines.first, "info status 6")
        XCTAssertEqual(lines.last, "info status 1005")
    }
}
