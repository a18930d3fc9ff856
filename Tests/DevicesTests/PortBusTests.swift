import XCTest
@testable import Devices

final class PortBusTests: XCTestCase {
    func testDispatchHandsTheOffsetInsideTheRange() throws {
        let bus = PortBus()
        let device = RecordingDevice("rec", base: 0x3f8, count: 8)
        try bus.register(device)
        _ = bus.read(port: 0x3fd, size: 1)
        bus.write(port: 0x3f8, size: 1, value: 0x41)
        bus.write(port: 0x3ff, size: 1, value: 0x42)
        XCTAssertEqual(device.reads.map(\.offset), [5])
        XCTAssertEqual(device.writes.map(\.offset), [0, 7])
        XCTAssertEqual(device.writes.map(\.value), [0x41, 0x42])
    }

    func testResultsAndValuesAreMaskedToTheAccessSize() throws {
        let bus = PortBus()
        let device = RecordingDevice("rec", base: 0x10, count: 4)
        try bus.register(device)
        XCTAssertEqual(bus.read(port: 0x10, size: 1), 0x08)
        XCTAssertEqual(bus.read(port: 0x10, size: 2), 0x0708)
        XCTAssertEqual(bus.read(port: 0x10, size: 4), 0x0506_0708)
        bus.write(port: 0x10, size: 1, value: 0xabcd)
        XCTAssertEqual(device.writes.last?.value, 0xcd)
        XCTAssertEqual(device.writes.last?.size, 1)
    }

    func testSeveralDevicesEachGetTheirOwnPorts() throws {
        let bus = PortBus()
        let devices = (0..<5).map { RecordingDevice("d\($0)", base: UInt16($0 * 16), count: 4) }
        for device in devices.reversed() { try bus.register(device) }
        for index in 0..<5 { bus.write(port: UInt16(index * 16 + 3), size: 1, value: UInt32(index)) }
        for (index, device) in devices.enumerated() {
            XCTAssertEqual(device.writes.map(\.value), [UInt64(index)])
            XCTAssertEqual(device.writes.map(\.offset), [3])
        }
        XCTAssertEqual(bus.ranges.map(\.device), ["d0", "d1", "d2", "d3", "d4"], "listed in port order")
    }

    func testOverlapIsRejectedNamingBothDevices() throws {
        let bus = PortBus()
        try bus.register(RecordingDevice("serial0", base: 0x3f8, count: 8))
        for (base, count) in [(UInt16(0x3f0), UInt16(9)), (0x3ff, 1), (0x3f8, 8), (0x3fa, 2), (0x300, 0x200)] {
            XCTAssertThrowsError(try bus.register(RecordingDevice("other", base: base, count: count))) { error in
                guard case let .overlap(new, existing)? = error as? BusError else { return XCTFail("\(error)") }
                XCTAssertEqual(new.device, "other")
                XCTAssertEqual(existing, BusRange(space: .port, device: "serial0", base: 0x3f8, size: 8))
                XCTAssertTrue("\(error)".contains("serial0 at 0x03f8-0x03ff"), "\(error)")
                XCTAssertTrue("\(error)".contains("other"), "\(error)")
            }
        }
        XCTAssertNoThrow(try bus.register(RecordingDevice("below", base: 0x3f0, count: 8)))
        XCTAssertNoThrow(try bus.register(RecordingDevice("above", base: 0x400, count: 1)))
        XCTAssertEqual(bus.ranges.count, 3)
    }

    func testEmptyAndOverflowingRangesAreRejected() {
        let bus = PortBus()
        XCTAssertThrowsError(try bus.register(RecordingDevice("empty", base: 0x10, count: 0)))
        XCTAssertThrowsError(try bus.register(RecordingDevice("wrap", base: 0xfffe, count: 4))) { error in
            XCTAssertTrue("\(error)".contains("0xffff"))
        }
        XCTAssertNoThrow(try bus.register(RecordingDevice("top", base: 0xfffe, count: 2)))
        XCTAssertEqual(bus.read(port: 0xffff, size: 1), 0x08)
    }

    func testUnknownPortsReadAllOnesPerSize() {
        let bus = PortBus()
        XCTAssertEqual(bus.read(port: 0x500, size: 1), 0xff)
        XCTAssertEqual(bus.read(port: 0x500, size: 2), 0xffff)
        XCTAssertEqual(bus.read(port: 0x500, size: 4), 0xffff_ffff)
    }

    func testUnknownPortsAreReportedOnce() {
        var reports: [(UInt16, Bool)] = []
        let bus = PortBus(onUnknownPort: { reports.append(($0, $1)) })
        bus.write(port: 0x501, size: 1, value: 0)
        for _ in 0..<100 { _ = bus.read(port: 0x500, size: 1); bus.write(port: 0x501, size: 2, value: 1) }
        _ = bus.read(port: 0xffff, size: 4)
        _ = bus.read(port: 0, size: 4)
        XCTAssertEqual(reports.map(\.0), [0x501, 0x500, 0xffff, 0])
        XCTAssertEqual(reports.map(\.1), [true, false, false, false])
    }

    func testEveryPortIsReportedExactlyOnce() {
        var count = 0
        let bus = PortBus(onUnknownPort: { _, _ in count += 1 })
        for _ in 0..<2 { for port in 0...0xffff { bus.write(port: UInt16(port), size: 1, value: 0) } }
        XCTAssertEqual(count, 65536)
    }

    func testIgnoredPortIsNeverUnknown() throws {
        var reports = 0
        let bus = PortBus(onUnknownPort: { _, _ in reports += 1 })
        try bus.register(IgnoredPort())
        bus.write(port: 0x80, size: 1, value: 0x12)
        XCTAssertEqual(bus.read(port: 0x80, size: 1), 0xff)
        XCTAssertEqual(bus.read(port: 0x80, size: 2), 0xffff)
        XCTAssertEqual(reports, 0)
    }

    func testSerialOnTheBus() throws {
        let bus = PortBus()
        let uart = SerialHarness()
        try bus.register(uart.serial)
        bus.write(port: 0x3f8, size: 1, value: 0x41)
        XCTAssertEqual(uart.transmitted, [0x41])
        XCTAssertEqual(bus.read(port: 0x3fd, size: 1), 0x60)
    }
}
