import Glibc
import XCTest
@testable import Monitor

final class ConsoleUnixSocketTests: XCTestCase {
    func testSerialClientInputReachesTheGuestAndGuestOutputReachesTheClient() throws {
        let path = temporarySocketPath("serial")
        let guest = FakeGuestConsole()
        let input = GuestInputQueue(console: guest)
        let backend = try UnixSocketSerialBackend(path: path)
        defer { backend.close() }
        let loop = PollLoop()
        backend.register(in: loop, input: input)

        backend.writeGuestOutput(Array("dropped: no client yet".utf8))
        let client = try connectClient(to: path)
        defer { close(client) }
        try runLoop(loop) { backend.client != nil }

        sendText(client, "ls\r")
        try runLoop(loop) { guest.received.count == 3 }
        XCTAssertEqual(guest.received, Array("ls\r".utf8))

        backend.writeGuestOutput(Array("login: ".utf8))
        let output = try readClient(client, loop: loop) { $0.hasSuffix("login: ") }
        XCTAssertEqual(output, "login: ")
    }

    func testOneClientAtATimeAndTheNextOneIsServedAfterTheFirstLeaves() throws {
        let path = temporarySocketPath("serial2")
        let guest = FakeGuestConsole()
        let input = GuestInputQueue(console: guest)
        let backend = try UnixSocketSerialBackend(path: path)
        defer { backend.close() }
        let loop = PollLoop()
        backend.register(in: loop, input: input)

        let first = try connectClient(to: path)
        try runLoop(loop) { backend.client != nil }
        let second = try connectClient(to: path)
        defer { close(second) }
        sendText(second, "2")
        try loop.runOnce(timeoutMilliseconds: 20)
        XCTAssertEqual(guest.received, [], "the second client waits in the backlog")

        close(first)
        try runLoop(loop) { guest.received == Array("2".utf8) }
        XCTAssertEqual(guest.received, Array("2".utf8))
    }

    func testInputTheGuestDoesNotTakeIsOfferedAgainInOrder() {
        let guest = FakeGuestConsole()
        guest.acceptPerCall = 2
        let input = GuestInputQueue(console: guest)
        input.send(Array("hello".utf8))
        XCTAssertEqual(guest.received, Array("he".utf8))
        XCTAssertFalse(input.isEmpty)
        input.retry()
        input.retry()
        XCTAssertEqual(guest.received, Array("hello".utf8))
        XCTAssertTrue(input.isEmpty)
    }

    func testMonitorSocketClientGetsPromptRunsCommandsAndQuits() throws {
        let path = temporarySocketPath("monitor")
        var quitCalled = false
        let server = try MonitorSocketServer(path: path, prompt: "(monitor) ", execute: { line in
            switch line {
            case "info status": return CommandOutcome(output: "VM status: running\n")
            case "quit": return CommandOutcome(quit: true)
            default: return CommandOutcome(error: "unknown command: '\(line)'")
            }
        }, onQuit: { quitCalled = true })
        defer { server.close() }
        let loop = PollLoop()
        server.register(in: loop)

        let client = try connectClient(to: path)
        defer { close(client) }
        let greeting = try readClient(client, loop: loop) { $0.hasSuffix("(monitor) ") }
        XCTAssertEqual(greeting, MonitorSocketServer.banner + "(monitor) ")

        sendText(client, "info status\r\nbogus\n")
        let replies = try readClient(client, loop: loop) { $0.components(separatedBy: "(monitor) ").count == 3 }
        XCTAssertEqual(replies, "VM status: running\n(monitor) unknown command: 'bogus'\n(monitor) ")

        // Lines that arrive on their own are followed by a fresh prompt, never left hanging.
        server.broadcast(Array("migration progress\n".utf8))
        XCTAssertEqual(try readClient(client, loop: loop) { $0.hasSuffix("(monitor) ") }, "migration progress\n(monitor) ")
        server.broadcast(Array("unfinished".utf8))
        XCTAssertEqual(try readClient(client, loop: loop) { $0.hasSuffix("(monitor) ") }, "unfinished\n(monitor) ")

        sendText(client, "quit\n")
        try runLoop(loop) { quitCalled }
        XCTAssertTrue(quitCalled)
    }
}
