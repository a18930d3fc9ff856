import Foundation
import XCTest

/// The monitor in a real terminal, typed at through tmux: prompt, completion, history, async
/// guest output above a half-typed line, Ctrl-a switching and quitting, terminal restored;
/// and every line a guest prints reaching the screen whole and in order.
final class InteractiveTerminalTests: XCTestCase {
    func testMonitorInTmux() throws {
        try runTmuxScript("monitor-interactive.sh", [Paths.binary, "-kernel", Paths.guest("hello.elf")],
                          environment: ["START_IN_CONSOLE": "1", "ASYNC_PATTERN": "tick"])
    }

    /// A flooding guest with the monitor focused for ten seconds, then a migration printing
    /// its pass lines while the guest prints (tests-tmux/guest-lines.sh).
    func testGuestLinesArriveWholeAndInOrder() throws {
        try runTmuxScript("guest-lines.sh", [Paths.binary, Paths.guest("dirty.elf"), "\(freeLoopbackPort())"])
    }

    /// A destination whose migration fails ends with its error on a line of its own and leaves
    /// the shell a fresh row (tests-tmux/destination-error.sh).
    func testAFailingDestinationLeavesTheTerminalClean() throws {
        try runTmuxScript("destination-error.sh", [Paths.binary, Paths.guest("hello.elf"), "\(freeLoopbackPort())"])
    }
}
