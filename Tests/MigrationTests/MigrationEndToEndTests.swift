import Foundation
import Glibc
import Machine
@testable import Migration
import SystemSupport
import XCTest

/// Whole migrations between two fake machines over real loopback TCP and unix sockets.
final class MigrationEndToEndTests: XCTestCase {
    private func startDestination(_ machine: FakeMachine, uri: String, resume: Bool = true)
        throws -> (IncomingMigration, Background<IncomingReport>) {
        let incoming = try IncomingMigration.listen(uri: uri)
        let receiving = Background { try incoming.receive(into: machine, resume: resume) }
        return (incoming, receiving)
    }

    private func tcpURI(_ incoming: IncomingMigration) -> String {
        "tcp:127.0.0.1:\(incoming.boundPort ?? 0)"
    }

    func testMigrationOverTCPCopiesRAMExactlyAndStateInOrder() throws {
        let source = FakeMachine(regionSizes: [4 << 20, 1 << 20])
        source.fillPattern(seed: 42)
        let destination = FakeMachine(regionSizes: [4 << 20, 1 << 20], running: false)
        let incoming = try IncomingMigration.listen(uri: "tcp:127.0.0.1:0")
        let receiving = Background { try incoming.receive(into: destination) }

        let controller = MigrationController()
        let log = EventLog()
        try controller.migrate(uri: tcpURI(incoming), machine: source, events: log.record)
        XCTAssertEqual(controller.waitForCompletion(), .completed)
        let report = try receiving.wait().get()

        XCTAssertTrue(source.ramEquals(destination))
        XCTAssertEqual(destination.loadedStates, [MachineState(sections: FakeMachine.defaultSections)])
        XCTAssertEqual(destination.runState, .running)
        XCTAssertEqual(destination.resumeCount, 1)
        XCTAssertEqual(source.runState, .paused(.postmigrate))
        XCTAssertFalse(source.isLogging)
        XCTAssertTrue(report.acknowledged)

        let stats = controller.stats
        let pages = UInt64((5 << 20) / 4096)
        let zeroPages = UInt64((4 << 20) / 4096 / 3 + 1) + UInt64((1 << 20) / 4096 / 3 + 1)
        XCTAssertEqual(stats.status, .completed)
        XCTAssertEqual(stats.duplicatePages, zeroPages)
        XCTAssertEqual(stats.normalPages, pages - zeroPages)
        XCTAssertEqual(UInt64(log.passes.reduce(0) { $0 + $1.pagesSent }), stats.normalPages + stats.duplicatePages)
        XCTAssertEqual(UInt64(report.normalPages + report.zeroPages), stats.normalPages + stats.duplicatePages)
        XCTAssertEqual(stats.totalBytes, 5 << 20)
        XCTAssertGreaterThan(stats.transferredBytes, stats.normalPages * 4096)
        XCTAssertNotNil(stats.downtimeMs)
        XCTAssertTrue(log.passes.last?.isSwitchover ?? false)
        guard case .completed(_, _, let passes, _)? = log.outcome else { return XCTFail("no completion event") }
        XCTAssertEqual(passes, log.passes.count)
        XCTAssertEqual(stats.status, .completed)
        XCTAssertEqual(stats.normalPages, UInt64(pages - zeroPages))
    }

    func testMigrationOverUnixSocketToDestinationStartedWithS() throws {
        let source = FakeMachine(regionSizes: [1 << 20], running: false)
        source.setPausedReason(nil)
        source.fillPattern(seed: 7, zeroEvery: 2)
        let destination = FakeMachine(regionSizes: [1 << 20], running: false)
        let path = temporarySocketPath()
        let (_, receiving) = try startDestination(destination, uri: "unix:\(path)", resume: false)
        defer { unlink(path) }

        let controller = MigrationController()
        try controller.migrate(uri: "unix:\(path)", machine: source)
        XCTAssertEqual(controller.waitForCompletion(), .completed)
        _ = try receiving.wait().get()
        XCTAssertTrue(source.ramEquals(destination))
        XCTAssertEqual(destination.runState, .paused(nil))
        XCTAssertEqual(destination.resumeCount, 0)
        XCTAssertEqual(source.runState, .paused(.postmigrate))
        // A paused guest dirties nothing: one pass, then the switchover pass.
        XCTAssertEqual(controller.stats.passes, 2)
    }

    func testDirtyingGuestTakesSeveralPassesAndSwitchesOverOnlyWhenItFits() throws {
        let pages = 1024
        let source = FakeMachine(regionSizes: [pages * 4096])
        source.fillPattern(seed: 3)
        let destination = FakeMachine(regionSizes: [pages * 4096], running: false)
        let (incoming, receiving) = try startDestination(destination, uri: "tcp:127.0.0.1:0")

        // The guest dirties 100 pages during each of the first four passes, and a background
        // thread adds writes of its own until the fourth pass has been reported.
        source.onCollect = { number in
            guard number <= 4 else { return }
            for page in stride(from: number, to: pages, by: pages / 100) {
                source.guestWrite(region: 0, page: page, value: UInt8(number))
            }
        }
        let keepDirtying = Mutex()
        var dirtying = true
        let log = EventLog()
        log.onEvent = { event in
            if case .passCompleted(let report) = event, report.pass >= 4 { keepDirtying.withLock { dirtying = false } }
        }
        let guest = Background { () -> Int in
            var writes = 0
            var value: UInt8 = 0
            while keepDirtying.withLock({ dirtying }) {
                for page in stride(from: writes % 7, to: pages, by: 7) {
                    value &+= 1
                    if source.guestWrite(region: 0, page: page, value: value) { writes += 1 }
                }
                usleep(200)
            }
            return writes
        }

        let controller = MigrationController()
        try controller.setParameter(.downtimeLimit, to: .unsigned(0))
        try controller.migrate(uri: tcpURI(incoming), machine: source, events: log.record)
        XCTAssertEqual(controller.waitForCompletion(), .completed)
        _ = try guest.wait().get()
        _ = try receiving.wait().get()

        XCTAssertTrue(source.ramEquals(destination))
        let reports = log.passes
        XCTAssertGreaterThanOrEqual(reports.count, 5)
        let precopy = reports.filter { !$0.isSwitchover }
        // Every pass but the last left more than the limit to send; the last left nothing.
        for report in precopy.dropLast() { XCTAssertGreaterThan(report.expectedDowntimeMs, 0, "\(report)") }
        XCTAssertEqual(precopy.last?.expectedDowntimeMs, 0)
        XCTAssertGreaterThan(reports[1].pagesSent, 0)
        let stats = controller.stats
        XCTAssertEqual(UInt64(reports.reduce(0) { $0 + $1.pagesSent }), stats.normalPages + stats.duplicatePages)
        XCTAssertEqual(stats.dirtySyncCount, UInt64(reports.count))
    }

    /// Manual dirty-log protection: every chunk is re-armed before its pages are read, so a
    /// write just before the re-arm is sent in the same pass and never again, and a later pass
    /// re-arms only the chunks it sends from. Re-arming after the read would lose those writes.
    func testManualProtectRearmsEachChunkBeforeItsPagesAreRead() throws {
        let sizes = [1024 * 4096, 300 * 4096]
        let source = FakeMachine(regionSizes: sizes)
        source.dirtyLogRearmChunkPages = 256
        source.fillPattern(seed: 5)
        let destination = FakeMachine(regionSizes: sizes, running: false)
        let (incoming, receiving) = try startDestination(destination, uri: "tcp:127.0.0.1:0")
        let firstPassChunks = 4 + 2
        var rearmsSeen = 0
        source.onRearm = { region, firstPage in
            rearmsSeen += 1
            if rearmsSeen <= firstPassChunks { source.guestWrite(region: region, page: firstPage + 7, value: 0xee) }
        }
        let laterWrites = [3, 300, 301, 700]
        source.onCollect = { number in
            if number == 1 { for page in laterWrites { source.guestWrite(region: 0, page: page, value: 0x11) } }
        }
        let controller = MigrationController()
        try controller.setParameter(.downtimeLimit, to: .unsigned(0))
        let log = EventLog()
        try controller.migrate(uri: tcpURI(incoming), machine: source, events: log.record)
        XCTAssertEqual(controller.waitForCompletion(), .completed)
        _ = try receiving.wait().get()

        XCTAssertTrue(source.ramEquals(destination), "a write made just before its chunk was re-armed was lost")
        let passes = log.passes
        XCTAssertEqual(passes.map(\.pagesSent), [1324, laterWrites.count, 0],
                       "pass 2 sends the later writes only: what pass 1 re-armed and read is not sent again")
        let rearms = source.rearms.map { "\($0.region):\($0.firstPage)+\($0.pageCount)" }
        XCTAssertEqual(rearms, ["0:0+256", "0:256+256", "0:512+256", "0:768+256", "1:0+256", "1:256+44",
                                "0:0+256", "0:256+256", "0:512+256"])
    }

    func testLayoutMismatchIsRefusedAndNamesTheDifference() throws {
        let source = FakeMachine(regionSizes: [8 << 20])
        let destination = FakeMachine(regionSizes: [4 << 20], running: false)
        let (incoming, receiving) = try startDestination(destination, uri: "tcp:127.0.0.1:0")
        let controller = MigrationController()
        let log = EventLog()
        try controller.migrate(uri: tcpURI(incoming), machine: source, events: log.record)
        let status = controller.waitForCompletion()

        let expected = "RAM size differs: stream has 8 MiB, this machine has 4 MiB"
        guard case .failure(let error) = receiving.wait() else { return XCTFail("destination accepted") }
        XCTAssertEqual("\(error)", "migration refused: \(expected)")
        guard case .failed(let reason) = status else { return XCTFail("source status \(status)") }
        XCTAssertTrue(reason.contains(expected), reason)
        XCTAssertEqual(source.runState, .running)
        XCTAssertFalse(source.isLogging)
        XCTAssertTrue(destination.loadedStates.isEmpty)
        XCTAssertEqual(destination.resumeCount, 0)
        guard case .failed(_, _, guestRunning: true)? = log.outcome else { return XCTFail("\(String(describing: log.outcome))") }
    }

    func testConnectionRefusedFailsAndLeavesGuestRunning() throws {
        // Bind a port, then close it: nothing listens there any more.
        let probe = try IncomingMigration.listen(uri: "tcp:127.0.0.1:0")
        let port = probe.boundPort ?? 1
        probe.cancel()
        _ = try? probe.receive(into: FakeMachine(regionSizes: [4096]))

        let source = FakeMachine(regionSizes: [1 << 20])
        let controller = MigrationController()
        let log = EventLog()
        try controller.migrate(uri: "tcp:127.0.0.1:\(port)", machine: source, events: log.record)
        let status = controller.waitForCompletion()
        guard case .failed(let reason) = status else { return XCTFail("status \(status)") }
        XCTAssertEqual(reason, "migrate: failed to connect to tcp:127.0.0.1:\(port): Connection refused")
        XCTAssertEqual(source.runState, .running)
        XCTAssertFalse(source.isLogging)
        XCTAssertEqual(controller.stats.setupTimeMs, 0)
        guard case .failed(reason, _, guestRunning: true)? = log.outcome else { return XCTFail("\(String(describing: log.outcome))") }

        try controller.migrate(uri: "unix:/nonexistent/dir/sock", machine: source)
        guard case .failed = controller.waitForCompletion() else { return XCTFail("unix connect succeeded") }
    }

    func testCancelMidwayKeepsSourceRunningAndFailsDestination() throws {
        let source = FakeMachine(regionSizes: [16 << 20])
        source.fillPattern(seed: 9)
        let destination = FakeMachine(regionSizes: [16 << 20], running: false)
        let (incoming, receiving) = try startDestination(destination, uri: "tcp:127.0.0.1:0")
        let controller = MigrationController()
        try controller.setParameter(.maxBandwidth, to: .unsigned(2 << 20))  // 2 MiB/s: about 8 s for 16 MiB
        let log = EventLog()
        try controller.migrate(uri: tcpURI(incoming), machine: source, events: log.record)
        while controller.stats.transferredBytes < 1 << 20 { usleep(1000) }
        XCTAssertEqual(controller.stats.status, .active)
        controller.cancel()
        XCTAssertEqual(controller.waitForCompletion(), .cancelled)
        XCTAssertEqual(source.runState, .running)
        XCTAssertFalse(source.isLogging)
        XCTAssertEqual(log.outcome, .cancelled(guestRunning: true))
        XCTAssertEqual(controller.stats.status, .cancelled)
        guard case .failure = receiving.wait() else { return XCTFail("destination completed a cancelled stream") }
        XCTAssertTrue(destination.loadedStates.isEmpty)
        XCTAssertEqual(destination.resumeCount, 0)

        // A new migration after a cancelled one works.
        let second = FakeMachine(regionSizes: [16 << 20], running: false)
        let (again, secondReceiving) = try startDestination(second, uri: "tcp:127.0.0.1:0")
        try controller.setParameter(.maxBandwidth, to: .unsigned(0))
        try controller.migrate(uri: tcpURI(again), machine: source)
        XCTAssertEqual(controller.waitForCompletion(), .completed)
        _ = try secondReceiving.wait().get()
        XCTAssertTrue(source.ramEquals(second))
    }

    func testDestinationClosingMidwayFailsSourceWhichKeepsRunning() throws {
        let path = temporarySocketPath()
        defer { unlink(path) }
        let listener = try MigrationURI.unix(path: path).transport.listen()
        let fakeDestination = Background { () -> Int in
            let connection = try listener.accept()
            var scratch = [UInt8](repeating: 0, count: 100_000)
            let n = try scratch.withUnsafeMutableBytes { try connection.readSome(into: $0.baseAddress!, count: $0.count, operation: "test") }
            connection.close()
            return n
        }
        let source = FakeMachine(regionSizes: [16 << 20])
        source.fillPattern(seed: 1)
        let controller = MigrationController()
        let log = EventLog()
        try controller.migrate(uri: "unix:\(path)", machine: source, events: log.record)
        let status = controller.waitForCompletion()
        _ = try fakeDestination.wait().get()
        guard case .failed(let reason) = status else { return XCTFail("status \(status)") }
        XCTAssertTrue(reason.contains("closed the connection") || reason.contains("reset"), reason)
        XCTAssertEqual(source.runState, .running)
        XCTAssertFalse(source.isLogging)
        guard case .failed(_, _, guestRunning: true)? = log.outcome else { return XCTFail("\(String(describing: log.outcome))") }
    }

    func testDestinationLoadFailureReachesSourceAndNothingRuns() throws {
        let source = FakeMachine(regionSizes: [1 << 20])
        let destination = FakeMachine(regionSizes: [1 << 20], running: false)
        destination.failLoad = true
        let (incoming, receiving) = try startDestination(destination, uri: "tcp:127.0.0.1:0")
        let controller = MigrationController()
        try controller.migrate(uri: tcpURI(incoming), machine: source)
        let status = controller.waitForCompletion()
        XCTAssertEqual(status, .failed(reason: "destination: could not load the received state: section 'cpu0' is malformed"))
        guard case .failure(let error) = receiving.wait() else { return XCTFail("destination succeeded") }
        // The destination's own error keeps the machine's, typed.
        guard case .machine(action: "load the received state", _)? = error as? MigrationError,
              case .loadRefused? = error.cause(FakeError.self) else { return XCTFail("\(error)") }
        XCTAssertEqual(destination.resumeCount, 0)
        XCTAssertEqual(destination.runState, .paused(.inmigrate))
        // The switchover had paused the source; the failure resumed it.
        XCTAssertEqual(source.runState, .running)
        XCTAssertEqual(source.resumeCount, 1)
    }

    func testListenerAcceptsExactlyOneConnection() throws {
        let path = temporarySocketPath()
        defer { unlink(path) }
        let destination = FakeMachine(regionSizes: [4096], running: false)
        let (_, receiving) = try startDestination(destination, uri: "unix:\(path)")
        let first = try MigrationURI.unix(path: path).transport.connect().stream
        // Wait until the destination has taken the connection (it then expects a header).
        var second: MigrationStream?
        for _ in 0..<2000 {
            do { second = try MigrationURI.unix(path: path).transport.connect().stream; second?.close(); usleep(1000) } catch { second = nil; break }
        }
        XCTAssertNil(second, "a second connection was accepted")
        first.close()
        guard case .failure(let error) = receiving.wait() else { return XCTFail("empty stream accepted") }
        XCTAssertTrue("\(error)".contains("closed the connection"), "\(error)")
    }

    func testSecondMigrationWhileOneRunsIsRefused() throws {
        let source = FakeMachine(regionSizes: [16 << 20])
        source.fillPattern(seed: 5)
        let destination = FakeMachine(regionSizes: [16 << 20], running: false)
        let (incoming, receiving) = try startDestination(destination, uri: "tcp:127.0.0.1:0")
        let controller = MigrationController()
        try controller.setParameter(.maxBandwidth, to: .unsigned(4 << 20))
        try controller.migrate(uri: tcpURI(incoming), machine: source)
        XCTAssertThrowsError(try controller.migrate(uri: tcpURI(incoming), machine: source)) { error in
            XCTAssertEqual("\(error)", "There's a migration process in progress")
        }
        XCTAssertThrowsError(try controller.setCapability(.autoConverge, on: true))
        controller.cancel()
        XCTAssertEqual(controller.waitForCompletion(), .cancelled)
        _ = receiving.wait()
    }
}

/// Auto-converge and live parameter changes, end to end.
final class MigrationConvergenceTests: XCTestCase {
    func testAutoConvergeThrottlesAHeavilyDirtyingGuestAndResetsAtTheEnd() throws {
        let pages = 512
        let source = FakeMachine(regionSizes: [pages * 4096])
        source.fillPattern(seed: 21)
        let destination = FakeMachine(regionSizes: [pages * 4096], running: false)
        let incoming = try IncomingMigration.listen(uri: "tcp:127.0.0.1:0")
        let receiving = Background { try incoming.receive(into: destination) }

        // Dirties its whole working set during every pass, until throttled twice.
        source.onCollect = { number in
            guard source.throttleCalls.count < 2 else { return }
            for page in 0..<pages { source.guestWrite(region: 0, page: page, value: UInt8(truncatingIfNeeded: number)) }
        }
        let controller = MigrationController()
        try controller.setCapability(.autoConverge, on: true)
        try controller.setParameter(.downtimeLimit, to: .unsigned(0))
        try controller.migrate(uri: "tcp:127.0.0.1:\(incoming.boundPort ?? 0)", machine: source)
        XCTAssertEqual(controller.waitForCompletion(), .completed)
        _ = try receiving.wait().get()
        XCTAssertTrue(source.ramEquals(destination))
        let calls = source.throttleCalls
        XCTAssertEqual(Array(calls.prefix(2)), [20, 30])
        XCTAssertEqual(calls.last, 0)
    }

    func testDowntimeLimitRaisedDuringMigrationLetsItSwitchOver() throws {
        let pages = 256
        let source = FakeMachine(regionSizes: [pages * 4096])
        let destination = FakeMachine(regionSizes: [pages * 4096], running: false)
        let incoming = try IncomingMigration.listen(uri: "tcp:127.0.0.1:0")
        let receiving = Background { try incoming.receive(into: destination) }
        let controller = MigrationController()
        try controller.setParameter(.downtimeLimit, to: .unsigned(0))
        source.onCollect = { number in
            for page in stride(from: 0, to: pages, by: 3) { source.guestWrite(region: 0, page: page, value: UInt8(truncatingIfNeeded: number)) }
        }
        let log = EventLog()
        log.onEvent = { event in
            // The guest never stops dirtying; a generous limit is what ends the migration.
            if case .passCompleted(let report) = event, report.pass == 4 {
                try? controller.setParameter(.downtimeLimit, to: .unsigned(2000000))
            }
        }
        try controller.migrate(uri: "tcp:127.0.0.1:\(incoming.boundPort ?? 0)", machine: source, events: log.record)
        XCTAssertEqual(controller.waitForCompletion(), .completed)
        _ = try receiving.wait().get()
        XCTAssertTrue(source.ramEquals(destination))
        XCTAssertGreaterThanOrEqual(log.passes.filter { !$0.isSwitchover }.count, 5)
        XCTAssertNotNil(controller.stats.downtimeMs)
    }
}

/// Transport behaviour that needs a misbehaving peer.
final class MigrationTransportTests: XCTestCase {
    func testListeningOnAllAddressesAcceptsLoopbackConnections() throws {
        let source = FakeMachine(regionSizes: [256 * 1024])
        source.fillPattern(seed: 2)
        let destination = FakeMachine(regionSizes: [256 * 1024], running: false)
        let incoming = try IncomingMigration.listen(uri: "tcp:0:0")
        let receiving = Background { try incoming.receive(into: destination) }
        let controller = MigrationController()
        try controller.migrate(uri: "tcp:127.0.0.1:\(incoming.boundPort ?? 0)", machine: source)
        XCTAssertEqual(controller.waitForCompletion(), .completed)
        _ = try receiving.wait().get()
        XCTAssertTrue(source.ramEquals(destination))
    }

    func testStalledDestinationIsNoticedAndTheGuestKeepsRunning() throws {
        let saved = TransportLimits.stallTimeoutSeconds
        TransportLimits.stallTimeoutSeconds = 1
        defer { TransportLimits.stallTimeoutSeconds = saved }
        let path = temporarySocketPath()
        defer { unlink(path) }
        let listener = try MigrationURI.unix(path: path).transport.listen()
        let release = DispatchSemaphore(value: 0)
        // Accepts, then reads nothing until the test is over.
        let stalled = Background { () -> Void in
            let connection = try listener.accept()
            release.wait()
            connection.close()
        }
        let source = FakeMachine(regionSizes: [64 << 20])
        source.fillPattern(seed: 4, zeroEvery: 1000)
        let controller = MigrationController()
        try controller.setParameter(.maxBandwidth, to: .unsigned(0))
        try controller.migrate(uri: "unix:\(path)", machine: source)
        let status = controller.waitForCompletion()
        release.signal()
        _ = stalled.wait()
        XCTAssertEqual(status, .failed(reason: "migration stream: sending RAM made no progress for 1 s; is the other side stuck?"))
        XCTAssertEqual(source.runState, .running)
        XCTAssertFalse(source.isLogging)
    }
}
