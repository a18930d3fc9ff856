import XCTest
@testable import Monitor

final class CompletionTests: XCTestCase {
    private let monitor = CommandInterpreter(backend: FakeMonitorBackend())

    /// Completes the last word of `line`, as readline would ask.
    private func complete(_ line: String) -> [String]? {
        let word = line.split(separator: " ", omittingEmptySubsequences: false).last.map(String.init) ?? ""
        return monitor.completions(line: line, wordStart: line.utf8.count - word.utf8.count, word: word)
    }

    func testFirstWordCompletesNamesAndAliases() {
        XCTAssertEqual(complete("s"), ["s", "stop", "system_powerdown", "system_reset"])
        XCTAssertEqual(complete("c"), ["c", "cont", "cpu"])
        XCTAssertEqual(complete("x"), ["x", "xp"])
        XCTAssertEqual(complete("zz"), [])
        let all = complete("") ?? []
        XCTAssertTrue(all.contains("?") && all.contains("help") && all.contains("q") && all.contains("pmemsave"))
        XCTAssertEqual(all, all.sorted())
    }

    func testFirstWordAfterLeadingBlanks() {
        XCTAssertEqual(complete("   pm"), ["pmemsave"])
    }

    func testInfoCompletesSubcommands() {
        XCTAssertEqual(complete("info "), ["cpus", "history", "registers", "status", "version"])
        XCTAssertEqual(complete("info s"), ["status"])
        XCTAssertEqual(complete("info status "), [])
        XCTAssertEqual(complete("info registers "), [])
    }

    func testHelpCompletesCommandNames() {
        XCTAssertEqual(complete("help sy"), ["system_powerdown", "system_reset"])
        XCTAssertEqual(complete("? qu"), ["quit"])
        XCTAssertEqual(complete("help info h"), ["history"])
        XCTAssertEqual(complete("help stop "), [])
    }

    func testFilenameArgumentsAskForFileCompletion() {
        XCTAssertNil(complete("pmemsave 0 4096 /tm"))
        XCTAssertNil(complete("memsave 0x1000 4K "))
        XCTAssertEqual(complete("pmemsave 0"), [])
        XCTAssertEqual(complete("pmemsave 0 40"), [])
        XCTAssertEqual(complete("pmemsave 0 4096 /tmp/a extra"), [])
    }

    func testQuotedFilenameStillCompletesAsFile() {
        let line = #"pmemsave 0 4096 "/tmp/my d"#
        let start = line.utf8.count - #""/tmp/my d"#.utf8.count
        XCTAssertNil(monitor.completions(line: line, wordStart: start, word: #""/tmp/my d"#))
    }

    func testOtherArgumentsOfferNothing() {
        XCTAssertEqual(complete("xp /2xg "), [])
        XCTAssertEqual(complete("x/2xg 0x"), [])
        XCTAssertEqual(complete("cont -"), [])
        XCTAssertEqual(complete("bogus arg"), [])
    }

    func testOutOfRangeWordStartDoesNotTrap() {
        XCTAssertNotNil(monitor.completions(line: "info", wordStart: 99, word: ""))
        XCTAssertNotNil(monitor.completions(line: "info", wordStart: -5, word: "in"))
    }
}
