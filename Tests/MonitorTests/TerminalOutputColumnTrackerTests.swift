import XCTest
@testable import Monitor

final class TerminalOutputColumnTrackerTests: XCTestCase {
    func testFollowsTheUnfinishedLastLine() {
        var tracker = OutputColumnTracker()
        tracker.append(Array("boot\nlogin: ".utf8))
        XCTAssertEqual(tracker.column, 7)
        XCTAssertTrue(tracker.hasPartialLine)
        tracker.append(Array("root\r\n".utf8))
        XCTAssertFalse(tracker.hasPartialLine)
    }

    func testTabsControlBytesAndUTF8() {
        var tracker = OutputColumnTracker()
        tracker.append(Array("a\tb\u{7}é".utf8))
        XCTAssertEqual(tracker.column, 10)
    }

    func testContinuationMoveUpOneRowAndRight() {
        var tracker = OutputColumnTracker()
        XCTAssertTrue(tracker.continuationMove(screenWidth: 80) == (0, 0))
        tracker.append(Array("guest> ".utf8))
        XCTAssertTrue(tracker.continuationMove(screenWidth: 80) == (1, 7))
        tracker.setColumn(85)
        XCTAssertTrue(tracker.continuationMove(screenWidth: 80) == (1, 5))
        tracker.setColumn(160)
        XCTAssertTrue(tracker.continuationMove(screenWidth: 80) == (0, 0), "a full row already wrapped")
    }
}
