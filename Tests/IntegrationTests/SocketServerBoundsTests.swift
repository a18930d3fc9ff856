import Foundation
import Glibc
import XCTest

/// The socket servers under pressure (issue 13): ports reused at once, bounded queues for
/// clients that read slowly, a limit on clients, the file limit, and peers that trickle.
final class SocketServerBoundsTests: XCTestCase {
    let small = ["-m", "32M", "-kernel", Paths.guest("hello.elf"), "-serial", "null"]

    private func waitInMigrate(_ vm: SwiftKVMProcess) {
        vm.send("info status\n")
        XCTAssertTrue(vm.waitForOutput("VM status: paused (inmigrate)"), vm.stdout + vm.stderr)
    }

    /// A to B and back to a new A on the same port, at once: the first connection's
    /// TIME_WAIT must not keep the second listener from binding (SO_REUSEADDR).
    func testPingPongMigrationOnOnePort() throws {
        let port = Loopback.freePort()
        let a = try SwiftKVMProcess(small)
        defer { a.kill() }
        let b = try SwiftKVMProcess(small + ["-incoming", "tcp:127.0.0.1:\(port)"])
        defer { b.kill() }
        waitInMigrate(b)
        a.send("migrate -d tcp:127.0.0.1:\(port)\n")
        XCTAssertTrue(migrationReport(a, until: ["completed", "failed"]).hasPrefix("completed"), a.stdout + a.stderr)
        a.send("quit\n")
        XCTAssertEqual(a.waitForExit(), 0)

        let again = try SwiftKVMProcess(small + ["-incoming", "tcp:127.0.0.1:\(port)"])
        defer { again.kill() }
        waitInMigrate(again)
        XCTAssertFalse(again.stderr.contains("in use"), again.stderr)
        b.send("migrate -d tcp:127.0.0.1:\(port)\n")
        XCTAssertTrue(migrationReport(b, until: ["completed", "failed"]).hasPrefix("completed"), b.stdout + b.stderr)
        again.send("info status\n")
        XCTAssertTrue(again.waitForOutput("VM status: running"), again.stdout + again.stderr)
    }

    func testBusyPortIsOneClearLine() throws {
        let (holder, port) = Loopback.listen()
        defer { close(holder) }
        let r = try runSwiftKVM(small + ["-incoming", "tcp:127.0.0.1:\(port)"], seconds: 30)
        XCTAssertEqual(r.status, 1, r.stderr)
        XCTAssertEqual(r.stderr.split(separator: "\n").first.map(String.init),
                       "swiftkvm: -incoming tcp:127.0.0.1:\(port): cannot listen: Address already in use")
    }

    /// A client that pipelines thousands of commands and does not read for a while: its
    /// commands wait unread, and when it reads, every reply arrives, in order (before, the
    /// replies were all built at once and those past the queue's cap were lost).
    func testPipelinedQMPCommandsWithASlowReaderLoseNothingAndStayBounded() throws {
        let qmp = Paths.temporary(self, "qmp")
        let vm = try SwiftKVMProcess(small + ["-qmp", "unix:\(qmp),server,nowait"])
        defer { vm.kill() }
        let client = try QMPConsolesTests.Client(unix: qmp)
        XCTAssertNotNil(client.negotiate())
        let before = vm.residentKiB
        // Each reply is about 28 KiB: together about 40 MiB, ten times the queue's 4 MiB cap and
        // well above the growth allowed below, so a server that kept them all would fail.
        let count = 1500
        let command = Array(#"{"execute": "human-monitor-command", "arguments": {"command-line": "xp /1000xg 0"}}"#.utf8)
        let fd = client.fd
        let writer = TestThread { () -> Bool in
            (0..<count).allSatisfy { _ in Loopback.writeAll(fd, command[...]) }
        }
        sleep(3)
        let during = vm.residentKiB
        var replies = 0
        var buffer: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        let deadline = Date().addingTimeInterval(120)
        while replies < count && Date() < deadline {
            var pending = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&pending, 1, 5000) > 0 else { break }
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            guard n > 0 else { break }
            buffer += chunk[0..<n]
            while let end = buffer.firstIndex(of: UInt8(ascii: "\n")) {
                if buffer[..<end].starts(with: Array(#"{"return": "#.utf8)) { replies += 1 }
                buffer.removeSubrange(...end)
            }
        }
        XCTAssertEqual(writer.wait(), true)
        XCTAssertEqual(replies, count, "every pipelined command gets its reply")
        XCTAssertGreaterThan(before, 0, "the resident size of swiftkvm could not be read")
        XCTAssertLessThan(during - before, 24 << 10, "resident memory grew by \(during - before) KiB while the client did not read")
    }

    /// Eight clients per QMP socket; the ninth waits in the backlog until one leaves.
    func testQMPServesAtMostEightClientsAndTheNextWhenOneLeaves() throws {
        let qmp = Paths.temporary(self, "qmp")
        let vm = try SwiftKVMProcess(small + ["-qmp", "unix:\(qmp),server,nowait"])
        defer { vm.kill() }
        var clients = try (0..<8).map { _ in try QMPConsolesTests.Client(unix: qmp) }
        for client in clients { XCTAssertNotNil(client.message(), "a greeting for each of the first eight") }
        let ninth = try QMPConsolesTests.Client(unix: qmp)
        XCTAssertNil(ninth.read(until: "\r\n", seconds: 2), "the ninth is not served yet")
        clients.removeFirst()
        XCTAssertNotNil(ninth.message(), "served once a place is free")
        ninth.send(#"{"execute": "qmp_capabilities"}"#)
        XCTAssertEqual(ninth.message(), #"{"return": {}}"# + "\r\n")
        _ = clients
    }

    /// At the file limit: a QMP client is hung up on at once (no busy loop), and the incoming
    /// migration is still accepted and completes.
    func testAtTheFileLimitQMPRefusesWithoutSpinningAndTheMigrationStillArrives() throws {
        let port = Loopback.freePort()
        let qmp = Paths.temporary(self, "qmp")
        let destination = try SwiftKVMProcess(small + ["-incoming", "tcp:127.0.0.1:\(port)", "-qmp", "unix:\(qmp),server,nowait"])
        defer { destination.kill() }
        waitInMigrate(destination)
        let pid = destination.process.processIdentifier
        try lowerFileLimitToNextFreeDescriptor(of: pid)

        let cpuBefore = cpuTicks(pid)
        let refused = try QMPConsolesTests.Client(unix: qmp)
        XCTAssertTrue(waitForEndOfFile(refused.fd, seconds: 10), "a client at the file limit is hung up on")
        sleep(2)
        let cpuUsed = cpuTicks(pid) - cpuBefore
        XCTAssertLessThan(cpuUsed, 100, "the poll loop must not spin at the file limit (\(cpuUsed) ticks in 2 s)")
        XCTAssertTrue(destination.stderr.contains("refused a client: Too many open files"), destination.stderr)

        let source = try SwiftKVMProcess(small)
        defer { source.kill() }
        source.send("migrate -d tcp:127.0.0.1:\(port)\n")
        XCTAssertTrue(migrationReport(source, until: ["completed", "failed"]).hasPrefix("completed"), source.stdout + source.stderr + destination.stderr)
        destination.send("info status\n")
        XCTAssertTrue(destination.waitForOutput("VM status: running"), destination.stdout + destination.stderr)
    }

    /// A source that trickles a byte twice a second never finishes a record: the destination
    /// gives up after its bound on time without progress (1 s here), not 60 s per byte.
    func testATricklingSourceIsCutOffByTheBoundOnTimeWithoutProgress() throws {
        let port = Loopback.freePort()
        let destination = try SwiftKVMProcess(small + ["-incoming", "tcp:127.0.0.1:\(port)"],
                                              environment: ["SWIFTKVM_MIGRATION_IDLE_TIMEOUT": "1"])
        defer { destination.kill() }
        waitInMigrate(destination)
        guard let fd = Loopback.connect(port: port) else { return XCTFail("no listener") }
        defer { close(fd) }
        let trickle = TestThread { () -> Void in
            for byte in Array("SKVM".utf8) + Array(repeating: 0, count: 40) {
                guard Loopback.writeAll(fd, [byte][...]) else { return }
                usleep(500_000)
            }
        }
        XCTAssertNotNil(destination.waitForExit(seconds: 15), "the destination still waits")
        XCTAssertTrue(destination.stderr.contains("made no progress for 1 s"), destination.stderr)
        _ = trickle
    }

    /// After refusing a stream, the destination drains what the source still sends for a
    /// bounded time only: a source that keeps trickling cannot hold it.
    func testTheDrainAfterARefusalIsBoundedInTime() throws {
        let port = Loopback.freePort()
        let destination = try SwiftKVMProcess(small + ["-incoming", "tcp:127.0.0.1:\(port)"])
        defer { destination.kill() }
        waitInMigrate(destination)
        guard let fd = Loopback.connect(port: port) else { return XCTFail("no listener") }
        defer { close(fd) }
        XCTAssertTrue(Loopback.writeAll(fd, Array("NOPE-not-a-stream".utf8)[...]))
        let trickle = TestThread { () -> Void in
            for _ in 0..<120 {
                guard Loopback.writeAll(fd, [0][...]) else { return }
                usleep(250_000)
            }
        }
        XCTAssertNotNil(destination.waitForExit(seconds: 12), "the destination is still draining")
        XCTAssertTrue(destination.stderr.contains("not a swiftkvm migration stream"), destination.stderr)
        let reply = String(decoding: Loopback.readToEnd(fd), as: UTF8.self)
        XCTAssertTrue(reply.contains("not a swiftkvm migration stream"), "the source is told why: \(reply)")
        _ = trickle
    }

    // MARK: - helpers

    private func cpuTicks(_ pid: Int32) -> Int {
        let stat = (try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8)) ?? ""
        // Fields after the parenthesised name: utime and stime are the 12th and 13th.
        guard let close = stat.lastIndex(of: ")") else { return 0 }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        return (Int(fields[11]) ?? 0) + (Int(fields[12]) ?? 0)
    }

    /// Sets the process's soft RLIMIT_NOFILE to its lowest free descriptor number, so its
    /// next open, socket or accept fails with EMFILE (util-linux `prlimit`, as an operator would).
    private func lowerFileLimitToNextFreeDescriptor(of pid: Int32) throws {
        let used = Set(try FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd").compactMap { Int($0) })
        let lowestFree = (0...).first { !used.contains($0) } ?? 0
        let tool = Process()
        tool.executableURL = URL(fileURLWithPath: "/usr/bin/prlimit")
        tool.arguments = ["--pid", String(pid), "--nofile=\(lowestFree):"]
        try tool.run()
        tool.waitUntilExit()
        XCTAssertEqual(tool.terminationStatus, 0, "prlimit")
    }

    private func waitForEndOfFile(_ fd: Int32, seconds: Double) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        var byte: UInt8 = 0
        while Date() < deadline {
            var pending = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            if poll(&pending, 1, 100) > 0 { return recv(fd, &byte, 1, 0) <= 0 }
        }
        return false
    }
}
