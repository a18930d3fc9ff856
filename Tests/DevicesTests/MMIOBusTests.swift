import XCTest
@testable import Devices

final class MMIOBusTests: XCTestCase {
    func testDispatchHandsTheOffsetInsideTheRange() throws {
        let bus = MMIOBus()
        let device = RecordingDevice("virtio0", base: 0xd000_0000, size: 0x1000)
        try bus.register(device)
        _ = bus.read(address: 0xd000_0070, size: 4)
        bus.write(address: 0xd000_0000, size: 4, value: 7)
        bus.write(address: 0xd000_0fff, size: 1, value: 9)
        XCTAssertEqual(device.reads.map(\.offset), [0x70])
        XCTAssertEqual(device.writes.map(\.offset), [0, 0xfff])
        XCTAssertEqual(device.writes.map(\.value), [7, 9])
    }

    func testResultsAndValuesAreMaskedToTheAccessSize() throws {
        let bus = MMIOBus()
        let device = RecordingDevice("dev", base: 0x1000, size: 16)
        try bus.register(device)
        XCTAssertEqual(bus.read(address: 0x1000, size: 1), 0x08)
        XCTAssertEqual(bus.read(address: 0x1000, size: 2), 0x0708)
        XCTAssertEqual(bus.read(address: 0x1000, size: 4), 0x0506_0708)
        XCTAssertEqual(bus.read(address: 0x1000, size: 8), 0x0102_0304_0506_0708)
        bus.write(address: 0x1008, size: 2, value: 0xffff_abcd)
        XCTAssertEqual(device.writes.last?.value, 0xabcd)
        XCTAssertEqual(device.writes.last?.size, 2)
    }

    func testUnclaimedAddressesReadAllOnesAndAreReportedOncePerPageUpToTheLimit() {
        var reports: [(UInt64, Bool)] = []
        let bus = MMIOBus(onUnknownAddress: { reports.append(($0, $1)) })
        XCTAssertEqual(bus.read(address: 0xfee0_0000, size: 1), 0xff)
        XCTAssertEqual(bus.read(address: 0xfee0_0004, size: 4), 0xffff_ffff)
        XCTAssertEqual(bus.read(address: 0xfee0_0008, size: 8), UInt64.max)
        bus.write(address: 0xfee0_0ff0, size: 4, value: 1)
        XCTAssertEqual(reports.map(\.0), [0xfee0_0000], "one report for the page")
        for page in 1...100 { bus.write(address: UInt64(page) << 12, size: 1, value: 0) }
        XCTAssertEqual(reports.count, MMIOBus.reportLimit)
        XCTAssertEqual(reports[1].0, 0x1000)
        XCTAssertEqual(reports[1].1, true)
    }

    func testOverlapIsATypedErrorNamingBothDevices() throws {
        let bus = MMIOBus()
        try bus.register(RecordingDevice("virtio0", base: 0xd000_0000, size: 0x1000))
        for (base, size) in [(UInt64(0xcfff_f000), UInt64(0x1001)), (0xd000_0fff, 1), (0xd000_0800, 0x10), (0xc000_0000, 0x2000_0000)] {
            XCTAssertThrowsError(try bus.register(RecordingDevice("virtio1", base: base, size: size))) { error in
                guard case let .overlap(new, existing)? = error as? BusError else { return XCTFail("\(error)") }
                XCTAssertEqual(new.device, "virtio1")
                XCTAssertEqual(existing, BusRange(space: .mmio, device: "virtio0", base: 0xd000_0000, size: 0x1000))
                XCTAssertTrue("\(error)".contains("virtio0 at 0xd0000000-0xd0000fff"), "\(error)")
            }
        }
        XCTAssertNoThrow(try bus.register(RecordingDevice("below", base: 0xcfff_f000, size: 0x1000)))
        XCTAssertNoThrow(try bus.register(RecordingDevice("above", base: 0xd000_1000, size: 0x1000)))
        XCTAssertEqual(bus.ranges.map(\.device), ["below", "virtio0", "above"], "listed in address order")
    }

    func testEmptyAndOverflowingRangesAreRejected() throws {
        let bus = MMIOBus()
        XCTAssertThrowsError(try bus.register(RecordingDevice("empty", base: 0x1000, size: 0))) { error in
            guard case .emptyRange? = error as? BusError else { return XCTFail("\(error)") }
        }
        XCTAssertThrowsError(try bus.register(RecordingDevice("wrap", base: UInt64.max - 1, size: 3))) { error in
            guard case .beyondAddressSpace? = error as? BusError else { return XCTFail("\(error)") }
            XCTAssertTrue("\(error)".contains("0xffffffffffffffff"), "\(error)")
        }
        XCTAssertThrowsError(try bus.register(RecordingDevice("nothing"))) { error in
            XCTAssertEqual(error as? BusError, .noRanges(device: "nothing", space: .mmio))
        }
        let top = RecordingDevice("top", base: UInt64.max - 1, size: 2)
        try bus.register(top)
        XCTAssertEqual(bus.read(address: UInt64.max, size: 1), 0x08)
        XCTAssertEqual(top.reads.map(\.offset), [1])
    }

    func testADeviceWithSeveralRangesSeesOffsetsFromItsLowestAddress() throws {
        let bus = MMIOBus()
        let device = RecordingDevice("two", mmio: [MMIORange(base: 0x3000, size: 0x10), MMIORange(base: 0x1000, size: 0x10)])
        try bus.register(device)
        bus.write(address: 0x1004, size: 4, value: 1)
        bus.write(address: 0x3004, size: 4, value: 2)
        XCTAssertEqual(device.writes.map(\.offset), [4, 0x2004])
        XCTAssertEqual(bus.read(address: 0x2000, size: 4), 0xffff_ffff, "the gap between the ranges is nobody's")
    }
}
