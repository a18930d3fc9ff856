import Foundation
import Glibc
import XCTest

/// Runs one of the tests-tmux/ scripts (they drive swiftkvm in a real terminal through tmux)
/// and fails the calling test unless it reports PASS.
func runTmuxScript(_ name: String, _ arguments: [String], environment: [String: String] = [:],
                   file: StaticString = #filePath, line: UInt = #line) throws {
    let tmux = "/usr/bin/tmux"
    XCTAssertTrue(FileManager.default.isExecutableFile(atPath: tmux), "tmux is missing: apt-get install tmux (scripts/test does)",
                  file: file, line: line)
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/bin/bash")
    p.arguments = [Paths.repository + "/tests-tmux/" + name] + arguments
    p.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
    let out = Pipe()
    p.standardOutput = out
    p.standardError = out
    try p.run()
    let data = out.fileHandleForReading.readDataToEndOfFile()
    let text = String(decoding: data, as: UTF8.self)
    XCTAssertEqual(exitStatus(of: p), 0, text, file: file, line: line)
    XCTAssertTrue(text.hasSuffix("PASS\n"), text, file: file, line: line)
}

/// The script's exit status once its output has ended. Foundation's `waitUntilExit` was seen to
/// wait forever on a script that had already exited (a zombie nobody reaped, holding up the whole
/// test run), so after a grace period the child is reaped here. nil: it really does not exit.
private func exitStatus(of process: Process, seconds: Double = 120) -> Int32? {
    let deadline = Date().addingTimeInterval(seconds)
    while process.isRunning {
        var raw: Int32 = 0
        if waitpid(process.processIdentifier, &raw, WNOHANG) == process.processIdentifier {
            // WIFEXITED / WEXITSTATUS, which Swift does not import: low 7 bits 0 means exited.
            return raw & 0x7f == 0 ? (raw >> 8) & 0xff : 128 + (raw & 0x7f)
        }
        if Date() > deadline { return nil }
        usleep(50_000)
    }
    return process.terminationStatus
}
