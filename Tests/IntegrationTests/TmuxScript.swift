import Foundation
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
    p.waitUntilExit()
    let text = String(decoding: data, as: UTF8.self)
    XCTAssertEqual(p.terminationStatus, 0, text, file: file, line: line)
    XCTAssertTrue(text.hasSuffix("PASS\n"), text, file: file, line: line)
}
