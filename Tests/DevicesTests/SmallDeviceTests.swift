import XCTest
@testable import Devices

final class DebugExitTests: XCTestCase {
    func testWrittenValueBecomesQEMUExitStatus() throws {
        var statuses: [Int32] = []
        let device = DebugExit(onExit: { statuses.append($0) })
        let bus = PortBus()
        try bus.register(device)
        bus.write(port: 0xf4, size: 1, value: 0)
        bus.write(port: 0xf4, size: 1, value: 0x10)
        bus.write(port: 0xf4, size: 4, value: 0x3)
        XCTAssertEqual(statuses, [1, 0x21, 7])
        XCTAssertEqual(bus.read(port: 0xf5, size: 1), 0xff)
    }

    func testLargeValuesTruncateLikeQEMU() {
        XCTAssertEqual(DebugExit.exitStatus(forWrittenValue: 0xffff_ffff), -1)
        XCTAssertEqual(DebugExit.exitStatus(forWrittenValue: 0x8000_0000), 1)
    }

    func testConfigurableRange() throws {
        let device = DebugExit(base: 0x501, count: 2, onExit: { _ in })
        XCTAssertEqual(device.portRanges, [PortRange(base: 0x501, count: 2)])
    }
}
