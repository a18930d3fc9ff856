import Foundation
import Glibc
import XCTest
@testable import Monitor

final class ConsoleMonitorFrontendTests: XCTestCase {
    private func makePipeWithInput(_ text: String) -> Int32 {
        var fds: [Int32] = [-1, -1]
        _ = pipe(&fds)
        sendText(fds[1], text)
        close(fds[1])
        return fds[0]
    }

    private let execute: (String) -> CommandOutcome = { line in
        switch line {
        case "quit": return CommandOutcome(quit: true)
        case "info status": return CommandOutcome(output: "VM status: running\n")
        default: return CommandOutcome(error: "unknown command: '\(line)'")
        }
    }

    func testPipedScriptWithAFailingLineEndsWithStatusOne() throws {
        let stdinFD = makePipeWithInput("info status\nbogus\nquit")
        defer { close(stdinFD) }
        let frontend = try MonitorFrontend(execute: execute, complete: { _, _, _ in [] }, console: nil,
                                           serial: .null, monitor: .stdio, historyPath: nil, stdinFD: stdinFD)
        XCTAssertEqual(frontend.run(), 1)
        XCTAssertEqual(frontend.failedLines, 1)
    }

    func testPipedScriptEndOfInputKeepsRunningUntilExitIsRequested() throws {
        let stdinFD = makePipeWithInput("info status")
        defer { close(stdinFD) }
        let frontend = try MonitorFrontend(execute: execute, complete: { _, _, _ in [] }, console: nil,
                                           serial: .null, monitor: .stdio, historyPath: nil, stdinFD: stdinFD)
        let exitRequester = Thread { frontend.requestExit(status: 7) }
        exitRequester.start()
        XCTAssertEqual(frontend.run(), 7)
        XCTAssertEqual(frontend.failedLines, 0)
    }

    func testGuestOutputGoesToTheSerialFileTruncatedAtOpen() throws {
        let path = "/tmp/swiftkvm-test-\(getpid())-serial.txt"
        defer { unlink(path) }
        _ = FileManager.default.createFile(atPath: path, contents: Data("old contents".utf8))
        let guest = FakeGuestConsole()
        guest.emit("Hello from the guest\n")
        let stdinFD = makePipeWithInput("quit\n")
        defer { close(stdinFD) }
        let frontend = try MonitorFrontend(execute: execute, complete: { _, _, _ in [] }, console: guest,
                                           serial: .file(path: path), monitor: .stdio, historyPath: nil,
                                           stdinFD: stdinFD)
        XCTAssertEqual(frontend.run(), 0)
        XCTAssertEqual(try String(contentsOfFile: path, encoding: .utf8), "Hello from the guest\n")
    }

    func testUnopenableSerialFileIsReportedBeforeRunning() {
        XCTAssertThrowsError(try MonitorFrontend(execute: execute, complete: { _, _, _ in [] }, console: nil,
                                                 serial: .file(path: "/nonexistent-dir/out"), monitor: .none,
                                                 historyPath: nil)) { error in
            XCTAssertEqual("\(error)", "cannot open '/nonexistent-dir/out' for console output: No such file or directory")
        }
    }
}
