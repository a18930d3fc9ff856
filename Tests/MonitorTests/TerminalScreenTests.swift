import TestSupport
import XCTest
@testable import Monitor

/// The terminal's one writer, on a fake terminal: what ends up on screen (and in its history)
/// when guest output, monitor lines, the status line, typing and focus switches interleave.
final class TerminalScreenTests: XCTestCase {
    private var terminal: FakeTerminal!
    private var editor: FakeLineEditor!
    private var screen: TerminalScreen!

    private func makeScreen(focus: TerminalScreen.Focus, columns: Int = 120, banner: String? = nil) {
        terminal = FakeTerminal(columns: columns)
        editor = FakeLineEditor(terminal: terminal)
        screen = TerminalScreen(output: terminal, editor: editor, focus: focus, banner: banner)
        screen.start()
    }

    private func guest(_ text: String) { screen.guestOutput(Array(text.utf8)) }

    /// Types a line and presses Enter the way the session feeds the editor; the command prints
    /// `output`.
    private func command(_ line: String, output: String) {
        editor.type(line)
        screen.beforeEditorKeys([0x0D])
        editor.enter { _ in screen.commandOutput(output) }
        screen.afterEditorKeys()
    }

    func testCRAndLFInSeparateChunksLoseNoLine() {
        makeScreen(focus: .monitor)
        for n in 1...10 {
            guest("tick \(n)\r")
            guest("\n")
        }
        XCTAssertEqual(terminal.lines, (1...10).map { "tick \($0)" } + ["(monitor)"])
    }

    func testAGuestLineInPiecesStaysWholeAboveThePrompt() {
        makeScreen(focus: .monitor)
        guest("ti")
        XCTAssertEqual(terminal.lines, ["ti", "(monitor)"])
        guest("ck 1")
        XCTAssertEqual(terminal.lines, ["tick 1", "(monitor)"])
        guest("\r\ntick 2\r\nti")
        XCTAssertEqual(terminal.lines, ["tick 1", "tick 2", "ti", "(monitor)"])
    }

    func testAMonitorLineGoesAboveAHalfPrintedGuestLineWithTheMonitorFocused() {
        makeScreen(focus: .monitor)
        guest("swe")
        screen.monitorLines("migration: pass 6: 38400 pages sent\n")
        guest("ep 12\r\n")
        XCTAssertEqual(terminal.lines, ["migration: pass 6: 38400 pages sent", "sweep 12", "(monitor)"])
    }

    func testAMonitorLineGoesAboveAHalfPrintedGuestLineWithTheConsoleFocused() {
        makeScreen(focus: .console)
        guest("swe")
        screen.monitorLines("migration: pass 6: 38400 pages sent")
        XCTAssertEqual(terminal.cursorLine, "swe", "the guest continues its line")
        guest("ep 12\r\n")
        XCTAssertEqual(terminal.lines, ["migration: pass 6: 38400 pages sent", "sweep 12"])
    }

    func testATypedCommandDoesNotSplitAGuestLine() {
        makeScreen(focus: .monitor)
        guest("t")
        command("info status", output: "VM status: running\n")
        guest("ick 92\r\n")
        XCTAssertEqual(terminal.lines, ["(monitor) info status", "VM status: running", "tick 92", "(monitor)"])
    }

    func testTheLineBeingEditedStaysIntactUnderGuestOutput() {
        makeScreen(focus: .monitor)
        editor.type("info mig")
        guest("tick 1\r")
        guest("\ntick 2\r\nhalf")
        XCTAssertEqual(terminal.lines, ["tick 1", "tick 2", "half", "(monitor) info mig"])
        XCTAssertEqual(terminal.cursorLine, "(monitor) info mig")
        XCTAssertEqual(terminal.cursorColumn, "(monitor) info mig".count)
    }

    func testTheStatusLineSitsBetweenTheGuestLineAndThePrompt() {
        makeScreen(focus: .monitor)
        screen.setStatus("migration: pass 1: 10% of 100 pages")
        guest("tic")
        XCTAssertEqual(terminal.lines, ["tic", "migration: pass 1: 10% of 100 pages", "(monitor)"])
        screen.monitorLines("migration: pass 1: 100 pages sent\n")
        screen.setStatus(nil)
        guest("k 1\r\n")
        XCTAssertEqual(terminal.lines, ["migration: pass 1: 100 pages sent", "tick 1", "(monitor)"])
    }

    func testTheStatusLineIsCutToTheScreenWidth() {
        makeScreen(focus: .monitor, columns: 20)
        screen.setStatus("migration: pass 1: 10% of 100 pages")
        XCTAssertEqual(terminal.lines, ["migration: pass 1:", "(monitor)"])
    }

    func testSwitchingFocusKeepsTheGuestLineWhereTheGuestContinuesIt() {
        makeScreen(focus: .console, banner: "swiftkvm 0.1.0 monitor - type 'help' for more information")
        guest("boot\r\nlogin: ")
        screen.switchFocus()
        XCTAssertEqual(terminal.lines, ["boot", "swiftkvm 0.1.0 monitor - type 'help' for more information", "login:", "(monitor)"])
        editor.type("x")
        screen.switchFocus()
        XCTAssertEqual(terminal.cursorLine, "login:")
        guest("root\r\n")
        screen.switchFocus()
        XCTAssertEqual(terminal.lines, ["boot", "swiftkvm 0.1.0 monitor - type 'help' for more information",
                                        "(monitor) x", "login: root", "(monitor)"], "the banner comes once")
    }

    func testLeavingPutsTheCursorOnAFreshRowBelowEverything() {
        makeScreen(focus: .monitor)
        screen.setStatus("migration: pass 1: 10%")
        guest("abc")
        screen.leave()
        XCTAssertEqual(terminal.lines, ["abc"])
        XCTAssertEqual(terminal.cursorColumn, 0)
        XCTAssertEqual(terminal.cursorLine, "")
        XCTAssertEqual(terminal.cursorRow, 1)
    }

    func testAfterLeavingOnlyMonitorLinesAreShown() {
        makeScreen(focus: .monitor)
        guest("abc")
        screen.leave()
        screen.commandOutput("swiftkvm: terminated\n")
        guest("def\r\n")
        screen.monitorLines("swiftkvm: incoming migration failed\n")
        screen.leave()
        XCTAssertEqual(terminal.lines, ["abc", "swiftkvm: terminated", "swiftkvm: incoming migration failed"])
        XCTAssertEqual(terminal.cursorRow, 3)
    }

    func testLeavingTheConsoleEndsItsLine() {
        makeScreen(focus: .console)
        guest("abc")
        screen.leave()
        XCTAssertEqual(terminal.cursorRow, 1)
        XCTAssertEqual(terminal.cursorColumn, 0)
    }

    func testAGuestLineWiderThanTheScreenStaysWhole() {
        makeScreen(focus: .monitor, columns: 10)
        guest("0123456789abcde")
        XCTAssertEqual(terminal.lines, ["0123456789", "abcde", "(monitor)"])
        screen.monitorLines("monitor says\n")
        guest("fghij")
        XCTAssertEqual(terminal.logicalLines, ["monitor says", "0123456789abcdefghij", "(monitor)"])
        guest("\r\n")
        XCTAssertEqual(terminal.logicalLines, ["monitor says", "0123456789abcdefghij", "(monitor)"])
    }

    func testColouredGuestTextCanBeDrawnAgain() {
        XCTAssertEqual(GuestLine.rows(of: Array("\u{1B}[1;32mroot\u{1B}[0m# ".utf8), columns: 6), 1)
        XCTAssertEqual(GuestLine.rows(of: Array("abcdefg".utf8), columns: 6), 2)
        XCTAssertEqual(GuestLine.rows(of: Array("abcdef".utf8), columns: 6), 1, "a full row wraps only when more follows")
        XCTAssertNil(GuestLine.rows(of: Array("a\u{1B}[2Jb".utf8), columns: 6))
        XCTAssertNil(GuestLine.rows(of: [0x61, 0x0B], columns: 6))
    }

    func testAGuestLineThatCannotBeDrawnAgainIsLeftAloneAndNothingIsLost() {
        makeScreen(focus: .monitor)
        guest("abc\u{1B}[2C")  // a cursor move: only the terminal knows where it ends
        screen.monitorLines("monitor line\n")
        guest("def\r\n")
        XCTAssertEqual(terminal.lines.filter { !$0.hasPrefix("(monitor)") }, ["abc", "monitor line", "def"])
    }

    /// Guest lines cut into random pieces, monitor lines, status changes, commands and focus
    /// switches in random order: every line ends up on screen once, whole and in order, and
    /// the prompt is on the last row.
    func testRandomInterleavingsLoseAndSplitNothing() {
        for (seed, columns) in [(1, 200), (2, 200), (3, 23), (4, 37)] as [(UInt64, Int)] {
            var random = SplitMix64(seed: seed)
            makeScreen(focus: .monitor, columns: columns)
            let guestLines = (1...300).map { "guest line \($0)" + String(repeating: "x", count: Int.random(in: 0...30, using: &random)) }
            var stream = Array(guestLines.map { $0 + "\r\n" }.joined().utf8)[...]
            var monitorLines: [String] = []
            var commandLines: [String] = []
            while !stream.isEmpty {
                switch Int.random(in: 0..<20, using: &random) {
                case 0: monitorLines.append("monitor line \(monitorLines.count)"); screen.monitorLines(monitorLines.last! + "\n")
                case 1: screen.setStatus(Bool.random(using: &random) ? nil : "status \(Int.random(in: 0...99, using: &random))%")
                case 2: screen.switchFocus()
                case 3 where screen.focus == .monitor:
                    commandLines.append("output \(commandLines.count)")
                    command("cmd", output: commandLines.last! + "\n")
                case 4 where screen.focus == .monitor: editor.type("t")
                default:
                    let piece = stream.prefix(Int.random(in: 1...25, using: &random))
                    stream = stream.dropFirst(piece.count)
                    guest(String(decoding: piece, as: UTF8.self))
                }
            }
            screen.setStatus(nil)
            if screen.focus == .console { screen.switchFocus() }
            let shown = terminal.logicalLines
            let isMonitorSide: (String) -> Bool = {
                $0.hasPrefix("monitor line") || $0.hasPrefix("output") || $0.hasPrefix("(monitor)") || $0.hasPrefix("status")
            }
            XCTAssertEqual(shown.filter { !isMonitorSide($0) }, guestLines, "seed \(seed): guest lines, whole, once, in order")
            XCTAssertEqual(shown.filter { $0.hasPrefix("monitor line") }, monitorLines, "seed \(seed)")
            XCTAssertEqual(shown.filter { $0.hasPrefix("output") }, commandLines, "seed \(seed)")
            XCTAssertFalse(shown.contains { $0.hasPrefix("status") }, "seed \(seed): no status line left")
            XCTAssertEqual(shown.last.map { $0.hasPrefix("(monitor)") }, true, "seed \(seed): prompt last")
        }
    }
}
