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

final class I8042Tests: XCTestCase {
    func testResetCommand() {
        var resets = 0
        let controller = I8042(onReset: { resets += 1 })
        controller.portWrite(offset: 4, size: 1, value: 0xfe)
        XCTAssertEqual(resets, 1)
        controller.portWrite(offset: 4, size: 1, value: 0xad)  // other commands do nothing
        XCTAssertEqual(resets, 1)
    }

    func testStatusAndDataReadZero() {
        let controller = I8042(onReset: {})
        XCTAssertEqual(controller.portRead(offset: 4, size: 1), 0)
        XCTAssertEqual(controller.portRead(offset: 0, size: 1), 0)
        XCTAssertEqual(controller.portRead(offset: 1, size: 1), 0xff)
    }

    func testCommandByteAndOutputPortReset() {
        var resets = 0
        let controller = I8042(onReset: { resets += 1 })
        controller.portWrite(offset: 4, size: 1, value: 0x60)
        controller.portWrite(offset: 0, size: 1, value: 0x47)
        XCTAssertEqual(controller.state.commandByte, 0x47)
        XCTAssertEqual(controller.state.pendingCommand, 0)
        controller.portWrite(offset: 0, size: 1, value: 0x99)  // a keyboard byte: ignored
        XCTAssertEqual(controller.state.commandByte, 0x47)
        controller.portWrite(offset: 4, size: 1, value: 0xd1)
        controller.portWrite(offset: 0, size: 1, value: 0xfe)  // bit 0 low: reset
        XCTAssertEqual(resets, 1)
    }

    func testStateRoundTripAndBadBytes() throws {
        let controller = I8042(onReset: {})
        controller.portWrite(offset: 4, size: 1, value: 0x60)
        let state = controller.state
        XCTAssertEqual(try I8042State(decoding: state.encoded()), state)
        let restored = I8042(onReset: {})
        restored.restore(state)
        restored.portWrite(offset: 0, size: 1, value: 0x11)
        XCTAssertEqual(restored.state.commandByte, 0x11, "the pending command survived")
        XCTAssertThrowsError(try I8042State(decoding: [1, 2]))
        XCTAssertThrowsError(try I8042State(decoding: [0x45, 1, 0x77]))
    }
}
