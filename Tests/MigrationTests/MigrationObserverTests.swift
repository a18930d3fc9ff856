import Glibc
import Machine
@testable import Migration
import SystemSupport
import XCTest

/// The controller's fan-out: every observer hears every migration's status changes and
/// events, in order, whoever started it; the per-call `events` closure still works.
final class MigrationObserverTests: XCTestCase {
    /// Collects notifications from the migration thread.
    final class Recorder: @unchecked Sendable {
        private let lock = Mutex()
        private var items: [MigrationNotification] = []

        func record(_ notification: MigrationNotification) { lock.withLock { items.append(notification) } }

        var notifications: [MigrationNotification] { lock.withLock { items } }
        var statuses: [MigrationStatus] {
            notifications.compactMap { if case .statusChanged(let status) = $0 { return status } else { return nil } }
        }
        var passes: [Int] {
            notifications.compactMap { if case .event(.passCompleted(let report)) = $0 { return report.pass } else { return nil } }
        }
    }

    func testEveryObserverHearsStatusesAndPassesInOrder() throws {
        let source = FakeMachine(regionSizes: [4 << 20])
        source.fillPattern(seed: 3)
        let destination = FakeMachine(regionSizes: [4 << 20], running: false)
        let incoming = try IncomingMigration.listen(uri: "tcp:127.0.0.1:0")
        let receiving = Background { try incoming.receive(into: destination) }

        let controller = MigrationController()
        let first = Recorder(), second = Recorder()
        controller.addObserver { first.record($0) }
        controller.addObserver { second.record($0) }
        let caller = EventLog()
        try controller.migrate(uri: "tcp:127.0.0.1:\(incoming.boundPort ?? 0)", machine: source, events: caller.record)
        XCTAssertEqual(controller.waitForCompletion(), .completed)
        _ = try receiving.wait().get()

        XCTAssertEqual(first.statuses, [.setup, .active, .completed])
        XCTAssertEqual(first.passes, Array(1...caller.passes.count))
        XCTAssertEqual(first.notifications, second.notifications)
        // Events reach observers exactly as they reach the caller; `completed` comes before the summary.
        let events = first.notifications.compactMap { if case .event(let event) = $0 { return event } else { return nil } }
        XCTAssertEqual(events, caller.events)
        XCTAssertEqual(first.notifications.first, .statusChanged(.setup))
        XCTAssertEqual(first.notifications.last.map { if case .event(.finished) = $0 { return true } else { return false } }, true)
        XCTAssertNil(controller.stats.currentPass, "no pass runs after completion")
    }

    func testARemovedObserverHearsNothingMoreAndFailuresAreReported() throws {
        let probe = try IncomingMigration.listen(uri: "tcp:127.0.0.1:0")
        let port = probe.boundPort ?? 1
        probe.cancel()
        _ = try? probe.receive(into: FakeMachine(regionSizes: [4096]))

        let controller = MigrationController()
        let kept = Recorder(), removed = Recorder()
        controller.addObserver { kept.record($0) }
        let token = controller.addObserver { removed.record($0) }
        controller.removeObserver(token)
        try controller.migrate(uri: "tcp:127.0.0.1:\(port)", machine: FakeMachine(regionSizes: [1 << 20]))
        guard case .failed(let reason) = controller.waitForCompletion() else { return XCTFail("connected to a closed port") }

        XCTAssertEqual(kept.statuses, [.setup, .failed(reason: reason)])
        XCTAssertTrue(removed.notifications.isEmpty)
    }

    func testCancellingIsReportedBeforeCancelledAndThePassShowsProgress() throws {
        let source = FakeMachine(regionSizes: [16 << 20])
        source.fillPattern(seed: 9)
        let destination = FakeMachine(regionSizes: [16 << 20], running: false)
        let incoming = try IncomingMigration.listen(uri: "tcp:127.0.0.1:0")
        let receiving = Background { try incoming.receive(into: destination) }
        let controller = MigrationController()
        try controller.setParameter(.maxBandwidth, to: .unsigned(2 << 20))  // 2 MiB/s: about 8 s for 16 MiB
        let recorder = Recorder()
        controller.addObserver { recorder.record($0) }
        try controller.migrate(uri: "tcp:127.0.0.1:\(incoming.boundPort ?? 0)", machine: source)
        while controller.stats.transferredBytes < 1 << 20 { usleep(1000) }

        let progress = try XCTUnwrap(controller.stats.currentPass)
        XCTAssertEqual(progress.pass, 1)
        XCTAssertEqual(progress.totalPages, (16 << 20) / 4096)
        XCTAssertGreaterThan(progress.pagesSent, 0)
        XCTAssertLessThan(progress.pagesSent, progress.totalPages)
        XCTAssertGreaterThan(progress.bytesSent, 0)
        XCTAssertLessThan(progress.percent, 100)

        controller.cancel()
        XCTAssertEqual(controller.waitForCompletion(), .cancelled)
        _ = receiving.wait()
        XCTAssertEqual(recorder.statuses, [.setup, .active, .cancelling, .cancelled])
        XCTAssertNil(controller.stats.currentPass)
    }

    func testPassProgressCountsFromThePassStart() {
        let statistics = MigrationStatistics()
        statistics.begin(totalBytes: 1 << 20)
        statistics.update { $0.transferredBytes = 1000; $0.normalPages = 10; $0.duplicatePages = 2 }
        XCTAssertNil(statistics.snapshot.currentPass)
        statistics.beginPass(2, totalPages: 40)
        statistics.update { $0.transferredBytes += 8200; $0.normalPages += 2; $0.duplicatePages += 8 }
        let progress = statistics.snapshot.currentPass
        XCTAssertEqual(progress?.pass, 2)
        XCTAssertEqual(progress?.totalPages, 40)
        XCTAssertEqual(progress?.pagesSent, 10)
        XCTAssertEqual(progress?.bytesSent, 8200)
        XCTAssertEqual(progress?.percent, 25)
        statistics.endPass()
        XCTAssertNil(statistics.snapshot.currentPass)
    }
}

/// How far a pass has got, as the monitor's live line reads it (the text is in MonitorTests).
final class PassProgressTests: XCTestCase {
    func testPercentRateAndTimeLeft() {
        // 43% of the pages in 1 s at 118 MiB/s: the other 57% take about 1.33 s more.
        let progress = PassProgress(pass: 1, totalPages: 262144, pagesSent: 112722,
                                    bytesSent: 118 << 20, elapsedNs: 1_000_000_000)
        XCTAssertEqual(progress.percent, 43)
        XCTAssertEqual(progress.bytesPerSecond, 118 << 20)
        XCTAssertEqual(progress.secondsLeft, 2)
    }

    func testBeforeAnyPageTheTimeLeftIsUnknown() {
        let progress = PassProgress(pass: 3, totalPages: 100, pagesSent: 0, bytesSent: 0, elapsedNs: 0)
        XCTAssertEqual(progress.percent, 0)
        XCTAssertEqual(progress.bytesPerSecond, 0)
        XCTAssertNil(progress.secondsLeft)
    }

    func testAFinishedPassIsAHundredPercentWithNothingLeft() {
        let progress = PassProgress(pass: 2, totalPages: 50, pagesSent: 50, bytesSent: 3 << 20, elapsedNs: 2_000_000_000)
        XCTAssertEqual(progress.percent, 100)
        XCTAssertEqual(progress.bytesPerSecond, 3 << 19)
        XCTAssertEqual(progress.secondsLeft, 0)
    }

    func testEmptyPassIsZeroPercentNotACrash() {
        XCTAssertEqual(PassProgress(pass: 1, totalPages: 0, pagesSent: 0, bytesSent: 0, elapsedNs: 5).percent, 0)
    }
}
