import Glibc
@testable import Monitor
import SystemSupport
import XCTest

/// The output queue of a socket client whose peer reads slowly or not at all.
final class ConsoleSocketConnectionTests: XCTestCase {
    private func pair() -> (ours: Int32, peer: Int32) {
        var fds: [Int32] = [-1, -1]
        XCTAssertEqual(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &fds), 0)
        FileIO.setNonBlocking(fds[0])
        return (fds[0], fds[1])
    }

    func testAConsoleDropsWhatItsClientDoesNotReadAndAnOversizedWriteIsCut() {
        let (ours, peer) = pair()
        defer { close(peer) }
        let connection = SocketConnection(fd: ours, overflow: .drop, maxQueuedBytes: 1 << 20)
        connection.send([UInt8](repeating: 1, count: 8 << 20))
        for _ in 0..<100 { connection.send([UInt8](repeating: 2, count: 4096)) }
        XCTAssertTrue(connection.isOpen)
        XCTAssertEqual(connection.queuedBytes, 1 << 20)
        XCTAssertLessThanOrEqual(connection.storedBytes, (1 << 20) + (64 << 10))
        connection.close()
    }

    func testSentChunksAreFreedWhileTheQueueNeverEmpties() {
        let (ours, peer) = pair()
        defer { close(peer) }
        let connection = SocketConnection(fd: ours, overflow: .drop, maxQueuedBytes: 1 << 20)
        var scratch = [UInt8](repeating: 0, count: 16 << 10)
        // A slow reader: each round it takes a little, and more arrives than it took.
        for _ in 0..<400 {
            connection.send([UInt8](repeating: 3, count: 20 << 10))
            _ = scratch.withUnsafeMutableBytes { recv(peer, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
            connection.flush()
            XCTAssertLessThanOrEqual(connection.storedBytes, (1 << 20) + (128 << 10))
        }
        XCTAssertTrue(connection.wantsWrite, "the queue never emptied")
        connection.close()
    }

    func testQMPAndMonitorClientsAreBackedUpThenDisconnectedPastTheBound() {
        let (ours, peer) = pair()
        defer { close(peer) }
        let connection = SocketConnection(fd: ours, overflow: .disconnect, maxQueuedBytes: 1 << 20)
        while connection.isOpen && !connection.isBackedUp { connection.send([UInt8](repeating: 4, count: 4096)) }
        XCTAssertTrue(connection.isOpen, "back pressure comes before the bound")
        while connection.isOpen { connection.send([UInt8](repeating: 5, count: 4096)) }
        XCTAssertEqual(connection.queuedBytes, 0)
        // The peer reads what was sent before the bound, then end of file: it was hung up on.
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        var last = 1
        while last > 0 { last = chunk.withUnsafeMutableBytes { recv(peer, $0.baseAddress, $0.count, 0) } }
        XCTAssertEqual(last, 0, "end of file")
    }
}
