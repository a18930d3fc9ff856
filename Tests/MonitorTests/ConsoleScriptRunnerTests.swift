import XCTest
@testable import Monitor

final class ConsoleScriptRunnerTests: XCTestCase {
    private var executed: [String] = []
    private var output = ""
    private var errors = ""

    private func makeRunner(maxLineBytes: Int = LineSplitter.defaultMaxLineBytes) -> ScriptRunner {
        ScriptRunner(maxLineBytes: maxLineBytes, execute: { [unowned self] line in
            self.executed.append(line)
            switch line {
            case "info status": return CommandOutcome(output: "VM status: running\n")
            case "quit": return CommandOutcome(quit: true)
            case "noline": return CommandOutcome(output: "no newline")
            default: return CommandOutcome(error: "unknown command: '\(line)'")
            }
        }, writeOutput: { [unowned self] in self.output += $0 }, writeError: { [unowned self] in self.errors += $0 })
    }

    func testRunsLinesInOrderSkippingBlankAndCommentLines() {
        let runner = makeRunner()
        runner.feed(Array("# set up\n\n  info status  \n\t\nnoline\n".utf8))
        runner.finish()
        XCTAssertEqual(executed, ["info status", "noline"])
        XCTAssertEqual(output, "VM status: running\nno newline\n")
        XCTAssertEqual(errors, "")
        XCTAssertEqual(runner.failedLines, 0)
    }

    func testFailingLinesAreNamedByNumberAndCounted() {
        let runner = makeRunner()
        runner.feed(Array("info status\nbogus\n# c\nworse".utf8))
        runner.finish()
        XCTAssertEqual(errors, "line 2: unknown command: 'bogus'\nline 4: unknown command: 'worse'\n")
        XCTAssertEqual(runner.failedLines, 2)
    }

    func testQuitStopsTheScript() {
        let runner = makeRunner()
        runner.feed(Array("quit\ninfo status\n".utf8))
        XCTAssertTrue(runner.quitRequested)
        XCTAssertEqual(executed, ["quit"])
    }

    func testOverlongLineFailsWithoutRunning() {
        let runner = makeRunner(maxLineBytes: 12)
        runner.feed(Array("info status and more\ninfo status\n".utf8))
        XCTAssertEqual(executed, ["info status"])
        XCTAssertEqual(runner.failedLines, 1)
        XCTAssertTrue(errors.hasPrefix("line 1: line is 20 bytes long, more than the 12 allowed"), errors)
    }
}
