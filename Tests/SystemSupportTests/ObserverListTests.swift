import SystemSupport
import XCTest

final class ObserverListTests: XCTestCase {
    func testEveryObserverHearsEveryValueInOrderUntilRemoved() {
        let list = ObserverList<Int>()
        var first: [Int] = [], second: [Int] = []
        list.add { first.append($0) }
        let token = list.add { second.append($0) }
        list.publish(1)
        list.publish(2)
        list.remove(token)
        list.publish(3)
        XCTAssertEqual(first, [1, 2, 3])
        XCTAssertEqual(second, [1, 2])
    }

    func testPublishingNothingTellsNobody() {
        let list = ObserverList<String>()
        var heard: [String] = []
        list.add { heard.append($0) }
        list.publishing { nil }
        list.publishing { "changed" }
        XCTAssertEqual(heard, ["changed"])
    }
}
