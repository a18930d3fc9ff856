import Foundation
import Glibc
import XCTest

/// The `exec:` transport and `-incoming stdio` / `-incoming exec:`: how a migration is carried
/// over ssh (`migrate "exec:ssh host swiftkvm -incoming stdio ..."`), tested on one machine
/// with the destination started directly by the exec command.
final class HostileExecTransportTests: XCTestCase {
    func testMigrateThroughExecToADestinationOnStdio() throws {
        let args = ["-m", "64M", "-kernel", Paths.guest("hello.elf")]
        let console = Paths.temporary(self, "dst-console.txt")
        let pidFile = Paths.temporary(self, "dst.pid")
        let source = try SwiftKVMProcess(args)
        defer { source.kill() }
        XCTAssertTrue(source.waitForOutput("tick 1"), source.stdout)
        // `exec` keeps the pid, so the pid file names the destination swiftkvm itself.
        let destination = "echo $$ > \(pidFile); exec \(Paths.binary) \(args.joined(separator: " ")) -incoming stdio -serial file:\(console)"
        source.send("migrate \"exec:\(destination)\"\n")
        XCTAssertTrue(source.waitForOutput("migration: completed"), source.stdout + source.stderr)
        source.send("info status\n")
        XCTAssertTrue(source.waitForOutput("VM status: paused (postmigrate)"), source.stdout)

        let pid = pid_t(try String(contentsOfFile: pidFile, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0
        XCTAssertGreaterThan(pid, 0)
        defer { if pid > 0 { kill(pid, SIGKILL) } }
        // The guest runs on the destination: its console file fills with ticks.
        let deadline = Date().addingTimeInterval(30)
        var text = ""
        while Date() < deadline {
            text = (try? String(contentsOfFile: console, encoding: .utf8)) ?? ""
            if text.contains("tick") { break }
            usleep(100_000)
        }
        XCTAssertTrue(text.contains("tick"), "destination console: \(text)")
        XCTAssertEqual(kill(pid, 0), 0, "the destination keeps running after the source is done")
    }

    func testIncomingExecReadsAStreamFromACommand() throws {
        // A stream recorded from a real source, played back by `cat` as the command's stdout.
        let stream = try HostileStreamTests.capturedStream()
        let file = Paths.temporary(self, "stream.bin")
        try Data(stream).write(to: URL(fileURLWithPath: file))
        let destination = try SwiftKVMProcess(HostileStreamTests.guestArgs + ["-incoming", "exec:cat \(file)"])
        defer { destination.kill() }
        XCTAssertTrue(destination.waitForOutput("tick"), destination.stdout + destination.stderr)

        // The same stream cut short: refused, exit status 1, the guest never ran.
        let cut = Paths.temporary(self, "cut.bin")
        try Data(stream.prefix(stream.count / 2)).write(to: URL(fileURLWithPath: cut))
        let refused = try runSwiftKVM(HostileStreamTests.guestArgs + ["-incoming", "exec:cat \(cut)"])
        XCTAssertEqual(refused.status, 1, refused.stderr)
        XCTAssertTrue(refused.stderr.contains("incoming migration failed"), refused.stderr)
        XCTAssertFalse(refused.stdout.contains("tick"))
    }

    func testIncomingStdioOverPipesRunsTheGuestAndAcknowledgesOnStdout() throws {
        let stream = try HostileStreamTests.capturedStream()
        let file = Paths.temporary(self, "stream.bin"), reply = Paths.temporary(self, "reply.bin")
        let console = Paths.temporary(self, "console.txt")
        try Data(stream).write(to: URL(fileURLWithPath: file))
        // Plain files and pipes rather than sockets: stdin from a pipe, stdout to a file.
        let arguments = (HostileStreamTests.guestArgs + ["-incoming", "stdio", "-serial", "file:\(console)"]).joined(separator: " ")
        let shell = Process()
        shell.executableURL = URL(fileURLWithPath: "/bin/sh")
        let pidFile = Paths.temporary(self, "dst.pid")
        // $! of a background pipeline is its last command: the swiftkvm to stop at the end.
        shell.arguments = ["-c", "cat \(file) | \(Paths.binary) \(arguments) > \(reply) & echo $! > \(pidFile); wait"]
        try shell.run()
        defer {
            if let text = try? String(contentsOfFile: pidFile, encoding: .utf8), let pid = pid_t(text.trimmingCharacters(in: .whitespacesAndNewlines)) {
                kill(pid, SIGKILL)
            }
            shell.waitUntilExit()
        }
        let deadline = Date().addingTimeInterval(30)
        var text = ""
        while Date() < deadline && !text.contains("tick") {
            usleep(100_000)
            text = (try? String(contentsOfFile: console, encoding: .utf8)) ?? ""
        }
        XCTAssertTrue(text.contains("tick"), text)
        XCTAssertEqual(Array((try? Data(contentsOf: URL(fileURLWithPath: reply))) ?? Data()), [0x10], "the ack, and nothing else, on stdout")
    }

    func testIncomingStdioKeepsStdinAndStdoutForTheStream() throws {
        let monitor = try runSwiftKVM(["-incoming", "stdio", "-monitor", "stdio"])
        XCTAssertEqual(monitor.status, 1)
        XCTAssertTrue(monitor.stderr.contains("with -incoming stdio, stdin and stdout carry the migration"), monitor.stderr)
        let serial = try runSwiftKVM(["-incoming", "stdio", "-serial", "stdio"])
        XCTAssertEqual(serial.status, 1)
        XCTAssertTrue(serial.stderr.contains("-serial"), serial.stderr)
        // Empty stdin: the stream ends before its header; a clear error, nothing on stdout but
        // the error reply for the (absent) source.
        let empty = try runSwiftKVM(HostileStreamTests.guestArgs + ["-incoming", "stdio"])
        XCTAssertEqual(empty.status, 1, empty.stderr)
        XCTAssertTrue(empty.stderr.contains("incoming migration failed"), empty.stderr)
        XCTAssertFalse(empty.stdout.contains("tick"))
    }
}
