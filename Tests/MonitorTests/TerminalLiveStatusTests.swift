import Migration
import XCTest
@testable import Monitor

/// When the interactive monitor shows a migration progress line, and how it is cut to fit.
final class TerminalLiveStatusTests: XCTestCase {
    private func stats(_ status: MigrationStatus, pass: PassProgress?) -> MigrationStats {
        var stats = MigrationStats()
        stats.status = status
        stats.currentPass = pass
        return stats
    }

    private let longPass = PassProgress(pass: 1, totalPages: 65536, pagesSent: 16384, bytesSent: 64 << 20,
                                        elapsedNs: 2_000_000_000)

    func testAMigrationStartedElsewhereShowsNothing() {
        XCTAssertEqual(MigrationCommands.progressStatus(stats(.active, pass: longPass), startedHere: false), .idle)
    }

    func testALongPassShowsItsProgress() {
        XCTAssertEqual(MigrationCommands.progressStatus(stats(.active, pass: longPass), startedHere: true),
                       .line("migration: pass 1: 25% of 65536 pages, 32 MiB/s, about 6 s left"))
    }

    func testShortPassesAndGapsBetweenPassesShowNothingButKeepAsking() {
        var young = longPass
        young.elapsedNs = 100_000_000
        XCTAssertEqual(MigrationCommands.progressStatus(stats(.active, pass: young), startedHere: true), .pending)
        XCTAssertEqual(MigrationCommands.progressStatus(stats(.active, pass: nil), startedHere: true), .pending)
        XCTAssertEqual(MigrationCommands.progressStatus(stats(.setup, pass: nil), startedHere: true), .pending)
        XCTAssertEqual(MigrationCommands.progressStatus(stats(.completed, pass: longPass), startedHere: true), .pending)
    }

    func testLineIsCutToNeverWrap() {
        XCTAssertEqual(LiveStatus.fitted("abcdef", columns: 80), "abcdef")
        XCTAssertEqual(LiveStatus.fitted("abcdef", columns: 5), "abcd")
        XCTAssertEqual(LiveStatus.fitted("abcdef", columns: 0), "a")
        XCTAssertEqual(LiveStatus.line("x").text, "x")
        XCTAssertNil(LiveStatus.pending.text)
    }
}
