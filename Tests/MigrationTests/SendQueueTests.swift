import Glibc
@testable import Migration
import SystemSupport
import XCTest

/// The switchover waits, with the guest still running, for the link to carry what pre-copy
/// queued (MigrationStream.waitUntilSent), so the paused guest does not wait behind it.
final class SendQueueTests: XCTestCase {
    func testTheWaitEndsWhenThePeerHasReadTheQueueOrAtItsBounds() throws {
        let (sendFD, receiveFD) = socketPair()
        defer { close(receiveFD) }
        let socket = MigrationStream(fd: sendFD)
        defer { socket.close() }
        let count = 100_000
        try [UInt8](repeating: 7, count: count).withUnsafeBytes { try socket.writeAll($0, operation: "test") }
        XCTAssertGreaterThanOrEqual(socket.unsentBytes ?? 0, count, "the peer has read nothing yet")

        // Nobody reads: the deadline, or a cancel, ends the wait.
        XCTAssertFalse(socket.waitUntilSent(atMost: 1000, deadlineNanoseconds: MonotonicClock.nanoseconds() + 20_000_000,
                                            shouldStop: { false }))
        XCTAssertFalse(socket.waitUntilSent(atMost: 1000, deadlineNanoseconds: .max, shouldStop: { true }))

        let reader = Background { () -> Int in
            var got = 0
            var chunk = [UInt8](repeating: 0, count: 16384)
            while got < count {
                let n = chunk.withUnsafeMutableBytes { recv(receiveFD, $0.baseAddress, $0.count, 0) }
                if n <= 0 { break }
                got += n
            }
            return got
        }
        XCTAssertTrue(socket.waitUntilSent(atMost: 1000, deadlineNanoseconds: .max, shouldStop: { false }))
        XCTAssertEqual(try reader.wait().get(), count)
        XCTAssertLessThanOrEqual(socket.unsentBytes ?? .max, 1000)
    }
}
