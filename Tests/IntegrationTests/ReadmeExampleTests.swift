import Foundation
import XCTest

/// The README's examples, run as written with the binary the README names.
final class ReadmeExampleTests: XCTestCase {
    /// The README's two-terminal migration, typed into two tmux terminals; scripts/test builds
    /// `.build/release/swiftkvm` first.
    func testTheTwoTerminalMigrationWorksAsWritten() throws {
        let binary = Paths.repository + "/.build/release/swiftkvm"
        XCTAssertTrue(FileManager.default.isExecutableFile(atPath: binary),
                      "\(binary) is missing: swift build -c release --product swiftkvm (scripts/test does)")
        try runTmuxScript("readme-example.sh", ["two-terminal-migration", "\(freeLoopbackPort())"])
    }
}
