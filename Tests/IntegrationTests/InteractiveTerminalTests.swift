import Foundation
import XCTest

/// The monitor in a real terminal, typed at through tmux: prompt, completion, history, async
/// guest output above a half-typed line, Ctrl-a switching and quitting, terminal restored.
final class InteractiveTerminalTests: XCTestCase {
    func testMonitorInTmux() throws {
        let tmux = "/usr/bin/tmux"
        XCTAssertTrue(FileManager.default.isExecutableFile(atPath: tmux), "tmux is missing: apt-get install tmux (.ci/run does)")
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/bash")
        p.arguments = [Paths.repository + "/tests-tmux/monitor-interactive.sh", Paths.binary, "-kernel", Paths.guest("hello.elf")]
        var env = ProcessInfo.processInfo.environment
        env["START_IN_CONSOLE"] = "1"
        env["ASYNC_PATTERN"] = "tick"
        p.environment = env
        let out = Pipe()
        p.standardOutput = out
        p.standardError = out
        try p.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        let text = String(decoding: data, as: UTF8.self)
        XCTAssertEqual(p.terminationStatus, 0, text)
        XCTAssertTrue(text.contains("PASS"), text)
    }
}
