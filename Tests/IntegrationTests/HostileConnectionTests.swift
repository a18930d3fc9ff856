import Foundation
import Glibc
import XCTest

/// `-incoming` accepts exactly one connection: once a migration is being received, another
/// connection is refused and the first goes on undisturbed.
final class HostileConnectionTests: XCTestCase {
    func testSecondConnectionDuringAMigrationIsRefusedAndTheFirstCompletes() throws {
        let args = ["-m", "150M", "-kernel", Paths.guest("dirty.elf"), "-append", "base=4M size=96M every=64",
                    "-device", "isa-debug-exit,iobase=0xf4,iosize=0x04"]
        let port = Loopback.freePort()
        let destination = try SwiftKVMProcess(args + ["-incoming", "tcp:127.0.0.1:\(port)"])
        defer { destination.kill() }
        destination.send("info status\n")
        XCTAssertTrue(destination.waitForOutput("VM status: paused (inmigrate)"), destination.stderr)
        let source = try SwiftKVMProcess(args)
        defer { source.kill() }
        XCTAssertTrue(source.waitForOutput("sweep 64"), source.stdout)

        // The proxy holds the stream still at its first RAM batch while the intruder tries.
        let proxy = FaultProxy(to: port, fault: .watch)
        defer { proxy.close() }
        var intruder: Result<Int32, POSIXError>?
        var intruderReply: [UInt8] = []
        proxy.onRecord = { record in
            guard intruder == nil, case .ramBatch = record.kind else { return }
            intruder = Loopback.connectOnce(port: port)
            if case .success(let fd) = intruder {
                // Accepted by the kernel at most (a backlog race): it must be closed unread.
                _ = Loopback.writeAll(fd, Array("SKVM".utf8)[...])
                intruderReply = Loopback.readToEnd(fd)
                close(fd)
            }
        }
        source.send(MigrationSettings.converging)
        source.send("migrate -d tcp:127.0.0.1:\(proxy.port)\n")
        let report = migrationReport(source, until: ["completed", "failed"])
        XCTAssertTrue(report.hasPrefix("completed"), report + source.stderr)
        switch intruder {
        case .failure(let error)?: XCTAssertEqual(error.code, .ECONNREFUSED)
        case .success?: XCTAssertEqual(intruderReply, [], "the second connection must get nothing")
        case nil: XCTFail("the proxy never saw a RAM batch")
        }
        XCTAssertTrue(destination.waitForOutput("sweep"), destination.stdout + destination.stderr)
        XCTAssertFalse(destination.stdout.contains("MISMATCH"))
    }
}
