import Foundation
import XCTest

/// The monitor in a real terminal, typed at through tmux: prompt, completion, history, async
/// guest output above a half-typed line, Ctrl-a switching and quitting, terminal restored.
final class InteractiveTerminalTests: XCTestCase {
    func testMonitorInTmux() throws {
        try runTmuxScript("monitor-interactive.sh", [Paths.binary, "-kernel", Paths.guest("hello.elf")],
                          environment: ["START_IN_CONSOLE": "1", "ASYNC_PATTERN": "tick"])
    }
}
