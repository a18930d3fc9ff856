import XCTest
@testable import Migration

/// The one place page bitmaps are counted and joined: ragged sets read as zeros past their end.
final class PageBitmapsTests: XCTestCase {
    func testCountsAndUnionsOfRaggedSets() {
        let first: [[UInt64]] = [[0b1011, 0], [1 << 63]]
        let second: [[UInt64]] = [[0b0110, 0b1, 0xF0]]
        XCTAssertEqual(PageBitmaps.count(first), 4)
        XCTAssertEqual(PageBitmaps.count(second), 7)
        // Region 0: 0b1111 | 0b1 | 0xF0 = 4 + 1 + 4 pages; region 1 only in `first`: 1 page.
        XCTAssertEqual(PageBitmaps.countUnion(first, second), 10)
        XCTAssertEqual(PageBitmaps.countUnion(second, first), 10)
        XCTAssertEqual(PageBitmaps.union(first, second, regions: 3) { [3, 1, 2][$0] },
                       [[0b1111, 0b1, 0xF0], [1 << 63], [0, 0]])
        XCTAssertEqual(PageBitmaps.union(first, [], region: 0, words: 1), [0b1011], "cut to the words asked for")
        XCTAssertEqual(PageBitmaps.countUnion([], []), 0)
    }
}
