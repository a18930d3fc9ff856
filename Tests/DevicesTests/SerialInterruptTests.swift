import XCTest
@testable import Devices

final class SerialInterruptTests: XCTestCase {
    func testNoInterruptAfterReset() {
        let uart = SerialHarness()
        XCTAssertEqual(uart.iir, 0x01)
        XCTAssertFalse(uart.serial.interruptLevel)
        XCTAssertEqual(uart.lineChanges, [])
    }

    func testReceivedDataInterruptRaisesAndClearsWithTheQueue() {
        let uart = SerialHarness()
        uart.write(1, 0x01)  // ERBFI
        XCTAssertEqual(uart.lineChanges, [])
        XCTAssertEqual(uart.receive([0x41, 0x42]), 2)
        XCTAssertEqual(uart.lineChanges, [true])
        XCTAssertEqual(uart.iir, 0x04)
        XCTAssertEqual(uart.read(0), 0x41)
        XCTAssertEqual(uart.lineChanges, [true], "one byte still waits")
        XCTAssertEqual(uart.read(0), 0x42)
        XCTAssertEqual(uart.lineChanges, [true, false])
        XCTAssertEqual(uart.iir, 0x01)
    }

    func testReceivedDataDoesNotInterruptWhenDisabled() {
        let uart = SerialHarness()
        _ = uart.receive([1])
        XCTAssertEqual(uart.lineChanges, [])
        XCTAssertEqual(uart.iir, 0x01)
        uart.write(1, 0x01)
        XCTAssertEqual(uart.lineChanges, [true], "enabling with data queued raises the line")
        uart.write(1, 0x00)
        XCTAssertEqual(uart.lineChanges, [true, false])
    }

    func testTransmitEmptyInterruptRaisedWhenEnabledAndClearedByReadingIIR() {
        let uart = SerialHarness()
        uart.write(1, 0x02)  // ETBEI with THR empty: pending at once
        XCTAssertEqual(uart.lineChanges, [true])
        XCTAssertEqual(uart.iir, 0x02)
        XCTAssertEqual(uart.lineChanges, [true, false])
        XCTAssertEqual(uart.iir, 0x01, "reading IIR acknowledged it")
    }

    func testWritingTHRAcknowledgesThenReArmsTransmitEmpty() {
        let uart = SerialHarness()
        uart.write(1, 0x02)
        XCTAssertEqual(uart.lineChanges, [true])
        uart.write(0, 0x55)
        XCTAssertEqual(uart.transmitted, [0x55])
        XCTAssertEqual(uart.lineChanges, [true, false, true], "a fresh edge for the next byte")
        XCTAssertEqual(uart.iir, 0x02)
        XCTAssertEqual(uart.lineChanges, [true, false, true, false])
        uart.write(0, 0x56)
        XCTAssertEqual(uart.lineChanges, [true, false, true, false, true], "the line was low, so it only rises")
    }

    func testReEnablingTransmitEmptyRaisesItAgain() {
        let uart = SerialHarness()
        uart.write(1, 0x02)
        _ = uart.iir
        uart.write(1, 0x00)
        uart.write(1, 0x02)
        XCTAssertEqual(uart.lineChanges, [true, false, true])
        XCTAssertEqual(uart.iir, 0x02)
    }

    func testDisablingTransmitEmptyForgetsThePendingInterrupt() {
        let uart = SerialHarness()
        uart.write(1, 0x02)
        uart.write(1, 0x00)
        XCTAssertEqual(uart.lineChanges, [true, false])
        XCTAssertFalse(uart.serial.state.transmitEmptyInterruptPending)
    }

    func testPrioritiesLineStatusThenDataThenTransmitThenModem() {
        let uart = SerialHarness(receiveCapacity: 1)
        uart.write(4, 0x10 | 0x01)  // loopback + DTR: the modem lines change, a delta is pending
        uart.write(1, 0x0f)         // every source enabled; THRE becomes pending at once
        uart.write(0, 0x61)
        uart.write(0, 0x62)         // queue full: overrun
        XCTAssertEqual(uart.iir, 0x06, "line status first")
        XCTAssertEqual(uart.lsr & 0x03, 0x03, "DR and OE")
        XCTAssertEqual(uart.iir, 0x04, "then received data")
        XCTAssertEqual(uart.read(0), 0x61)
        XCTAssertEqual(uart.iir, 0x02, "then THR empty")
        XCTAssertEqual(uart.iir, 0x00, "then modem status, once THRE was acknowledged by reading IIR")
        XCTAssertTrue(uart.serial.interruptLevel)
        _ = uart.msr
        XCTAssertEqual(uart.iir, 0x01)
        XCTAssertFalse(uart.serial.interruptLevel)
    }

    func testLineStatusInterruptClearedByReadingLSR() {
        let uart = SerialHarness(receiveCapacity: 1)
        uart.write(4, 0x10)
        uart.write(1, 0x04)         // ELSI only
        uart.write(0, 1)
        XCTAssertEqual(uart.lineChanges, [])
        uart.write(0, 2)
        XCTAssertEqual(uart.lineChanges, [true])
        XCTAssertEqual(uart.lsr & 0x02, 0x02)
        XCTAssertEqual(uart.lineChanges, [true, false])
        XCTAssertEqual(uart.lsr & 0x02, 0, "OE is cleared by the read")
    }

    func testModemStatusInterruptClearedByReadingMSR() {
        let uart = SerialHarness()
        uart.write(1, 0x08)
        uart.write(4, 0x10 | 0x01)  // loopback + DTR: DSR changes
        XCTAssertEqual(uart.lineChanges, [true])
        XCTAssertEqual(uart.iir, 0x00)
        XCTAssertNotEqual(uart.msr & 0x0f, 0)
        XCTAssertEqual(uart.lineChanges, [true, false])
        XCTAssertEqual(uart.msr & 0x0f, 0)
    }

    func testInterruptLevelPropertyFollowsEveryTransition() {
        let uart = SerialHarness()
        uart.write(1, 0x01)
        _ = uart.receive([9])
        XCTAssertTrue(uart.serial.interruptLevel)
        _ = uart.read(0)
        XCTAssertFalse(uart.serial.interruptLevel)
        XCTAssertEqual(uart.lineChanges, [true, false])
    }
}
