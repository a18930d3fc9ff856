import Foundation
import Glibc
import XCTest

/// `-daemonize` and `-pidfile` for service managers, driven through QMP; `-qmp` option errors.
final class QMPDaemonTests: XCTestCase {
    func testDaemonRunsInTheBackgroundWithAPIDFileAndQuitsThroughQMP() throws {
        let pidFile = Paths.temporary(self, "pid")
        let qmp = Paths.temporary(self, "qmp")
        let launcher = launchWithShell(["-kernel", Paths.guest("hello.elf"), "-daemonize", "-pidfile", pidFile,
                                        "-serial", "null", "-monitor", "none", "-qmp", "unix:\(qmp),server,nowait"])
        XCTAssertEqual(launcher.status, 0, launcher.stderr)
        let text = (try? String(contentsOfFile: pidFile, encoding: .utf8)) ?? ""
        guard let pid = Int32(text.trimmingCharacters(in: .whitespacesAndNewlines)) else { return XCTFail("pid file: '\(text)'") }
        addTeardownBlock { kill(pid, SIGKILL) }
        XCTAssertEqual(kill(pid, 0), 0, "the daemon runs")
        XCTAssertEqual(getsid(pid), pid, "in a session of its own, away from the terminal")

        // A second instance with the same PID file is refused, on the terminal.
        let second = launchWithShell(["-kernel", Paths.guest("hello.elf"), "-daemonize", "-pidfile", pidFile,
                                      "-serial", "null", "-monitor", "none"])
        XCTAssertEqual(second.status, 1)
        XCTAssertTrue(second.stderr.contains("cannot create PID file '\(pidFile)': another process holds it"), second.stderr)

        let client = try QMPConsolesTests.Client(unix: qmp)
        XCTAssertNotNil(client.negotiate())
        client.send(#"{"execute": "query-status"}"#)
        XCTAssertNotNil(client.read(until: #""status": "running""#))
        client.send(#"{"execute": "quit"}"#)
        XCTAssertNotNil(client.read(until: #"{"return": {}}"#))
        for _ in 0..<100 where kill(pid, 0) == 0 { usleep(50_000) }
        XCTAssertNotEqual(kill(pid, 0), 0, "the daemon ended")
        XCTAssertFalse(FileManager.default.fileExists(atPath: pidFile), "the PID file is removed at exit")
    }

    func testSIGTERMEndsADaemonInOrderAndRemovesItsPIDFile() throws {
        let pidFile = Paths.temporary(self, "pid")
        let launcher = launchWithShell(["-kernel", Paths.guest("hello.elf"), "-daemonize", "-pidfile", pidFile,
                                        "-serial", "null", "-monitor", "none"])
        XCTAssertEqual(launcher.status, 0, launcher.stderr)
        let text = (try? String(contentsOfFile: pidFile, encoding: .utf8)) ?? ""
        guard let pid = Int32(text.trimmingCharacters(in: .whitespacesAndNewlines)) else { return XCTFail("pid file: '\(text)'") }
        addTeardownBlock { kill(pid, SIGKILL) }
        XCTAssertEqual(kill(pid, SIGTERM), 0)
        for _ in 0..<100 where kill(pid, 0) == 0 { usleep(50_000) }
        XCTAssertNotEqual(kill(pid, 0), 0, "the daemon ended")
        XCTAssertFalse(FileManager.default.fileExists(atPath: pidFile), "the PID file is removed on SIGTERM too")
    }

    func testSignalsEndTheProcessInOrderAsInQEMU() throws {
        for signalNumber in [SIGTERM, SIGINT, SIGHUP] {
            let pidFile = Paths.temporary(self, "pid")
            let p = try SwiftKVMProcess(["-kernel", Paths.guest("hello.elf"), "-pidfile", pidFile])
            XCTAssertTrue(p.waitForOutput("tick 1"), p.stdout)
            XCTAssertEqual(kill(p.process.processIdentifier, signalNumber), 0)
            XCTAssertEqual(p.waitForExit(), 0, "signal \(signalNumber): " + p.stderr)
            XCTAssertTrue(p.stderr.contains("swiftkvm: terminating on signal \(signalNumber)\n"), p.stderr)
            XCTAssertFalse(FileManager.default.fileExists(atPath: pidFile), "signal \(signalNumber): the PID file is removed")
        }
    }

    /// Runs swiftkvm as a shell would and waits for that process alone. (Foundation's `Process`
    /// counts a child as running while any descendant holds its status socket: the daemon would.)
    func launchWithShell(_ arguments: [String]) -> (status: Int32, stderr: String) {
        let errorFile = Paths.temporary(self, "stderr")
        let quoted = ([Paths.binary] + arguments).map { "'" + $0.replacingOccurrences(of: "'", with: "'\\''") + "'" }
        let status = system(quoted.joined(separator: " ") + " </dev/null >/dev/null 2>'\(errorFile)'")
        let text = (try? String(contentsOfFile: errorFile, encoding: .utf8)) ?? ""
        return (status & 0x7f == 0 ? (status >> 8) & 0xff : -1, text)
    }

    func testErrorsBeforeDaemonizingReachTheTerminal() throws {
        let badKernel = try runSwiftKVM(["-daemonize", "-serial", "null", "-monitor", "none", "-kernel", "/nonexistent/guest.elf"])
        XCTAssertEqual(badKernel.status, 1)
        XCTAssertTrue(badKernel.stderr.contains("/nonexistent/guest.elf"), badKernel.stderr)

        let stdio = try runSwiftKVM(["-daemonize", "-kernel", Paths.guest("hello.elf")])
        XCTAssertEqual(stdio.status, 1)
        XCTAssertTrue(stdio.stderr.contains("-daemonize: the serial port (-serial) cannot use stdio"), stdio.stderr)

        let busy = Paths.temporary(self, "busy.qmp")
        let first = try SwiftKVMProcess(["-kernel", Paths.guest("hello.elf"), "-serial", "null", "-qmp", "tcp:127.0.0.1:0,server,nowait", "-qmp", "unix:\(busy),server,nowait"])
        defer { first.kill() }
        let badQMP = try runSwiftKVM(["-qmp", "unix:/tmp/x.sock"])
        XCTAssertEqual(badQMP.status, 1)
        XCTAssertTrue(badQMP.stderr.contains("-qmp"), badQMP.stderr)
        let badAddress = try runSwiftKVM(["-kernel", Paths.guest("hello.elf"), "-serial", "null", "-qmp", "tcp:no-such-host.invalid:4444,server,nowait"])
        XCTAssertEqual(badAddress.status, 1)
        XCTAssertTrue(badAddress.stderr.contains("-qmp: cannot listen on tcp:no-such-host.invalid:4444"), badAddress.stderr)
    }
}
