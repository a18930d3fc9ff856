import Glibc
import XCTest
@testable import Monitor

/// The poll loop's two additions for TLS clients: input it cannot see, and deadlines.
final class ConsolePollLoopTests: XCTestCase {
    func testBufferedInputCountsAsReadableWithoutTheDescriptorBeingReady() throws {
        let (ours, theirs) = try socketPair()
        defer { close(ours); close(theirs) }
        let loop = PollLoop()
        var buffered = true
        var seen: [Int16] = []
        loop.watch(fd: ours, hasBufferedInput: { buffered }) { events in
            seen.append(events)
            buffered = false
        }
        // Nothing was written: only the buffered input makes this round return, at once.
        try loop.runOnce(timeoutMilliseconds: -1)
        XCTAssertEqual(seen, [Int16(POLLIN)])
        try loop.runOnce(timeoutMilliseconds: 0)
        XCTAssertEqual(seen.count, 1, "without buffered input an idle socket stays quiet")
    }

    func testBufferedInputIsIgnoredWhileTheWatchDoesNotWantToRead() throws {
        let (ours, theirs) = try socketPair()
        defer { close(ours); close(theirs) }
        let loop = PollLoop()
        var calls = 0
        loop.watch(fd: ours, interest: { (false, false) }, hasBufferedInput: { true }) { _ in calls += 1 }
        try loop.runOnce(timeoutMilliseconds: 0)
        XCTAssertEqual(calls, 0, "a client held back (its replies backed up) is not read")
    }

    func testAWatchPastItsDeadlineIsRemovedAndToldOnce() throws {
        let (ours, theirs) = try socketPair()
        defer { close(ours); close(theirs) }
        let loop = PollLoop()
        var expired = 0
        var handled = 0
        loop.watch(fd: ours, until: 0, interest: { (true, false) }, expired: { expired += 1 }) { _ in handled += 1 }
        try loop.runOnce(timeoutMilliseconds: -1)
        XCTAssertEqual(expired, 1)
        XCTAssertEqual(handled, 0)
        _ = write(theirs, "x", 1)
        try loop.runOnce(timeoutMilliseconds: 0)
        XCTAssertEqual(expired, 1)
        XCTAssertEqual(handled, 0, "the expired watch is gone")
    }

    func testAWatchUnwatchedBeforeItsDeadlineNeverExpires() throws {
        let (ours, theirs) = try socketPair()
        defer { close(ours); close(theirs) }
        let loop = PollLoop()
        var expired = 0
        var token: PollLoop.Token?
        token = loop.watch(fd: ours, until: 0, interest: { (true, false) }, expired: { expired += 1 }) { _ in
            if let token { loop.unwatch(token) }
        }
        _ = write(theirs, "x", 1)
        try loop.runOnce(timeoutMilliseconds: -1)
        XCTAssertEqual(expired, 0, "the handler finished it first")
    }

    private func socketPair() throws -> (Int32, Int32) {
        var fds: [Int32] = [0, 0]
        guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &fds) == 0 else { throw POSIXError(.EMFILE) }
        return (fds[0], fds[1])
    }
}
