import TestSupport
import XCTest
@testable import Devices

final class SerialStateTests: XCTestCase {
    private func busyUART() -> SerialHarness {
        let uart = SerialHarness()
        uart.write(3, 0x80); uart.write(0, 0x01); uart.write(1, 0x00); uart.write(3, 0x1b)
        uart.write(2, 0x81)
        uart.write(4, 0x0b)
        uart.write(7, 0x42)
        uart.write(1, 0x03)            // ERBFI + ETBEI: THRE pending at once
        _ = uart.receive([0x61, 0x62, 0x63])
        return uart
    }

    func testRoundTripKeepsInterruptEnablesPendingTHREAndQueuedInput() {
        let source = busyUART()
        let state = source.serial.state
        XCTAssertTrue(state.transmitEmptyInterruptPending)
        XCTAssertEqual(state.receiveQueue, [0x61, 0x62, 0x63])

        let destination = SerialHarness(restoring: state)
        XCTAssertEqual(destination.serial.state, state)
        XCTAssertEqual(destination.lineChanges, [true], "restore reports the line")
        XCTAssertEqual(destination.read(1), 0x03)
        XCTAssertEqual(destination.iir, 0xcc, "3 bytes below trigger 8: timeout first")
        XCTAssertEqual(destination.read(0), 0x61)
        XCTAssertEqual(destination.read(0), 0x62)
        XCTAssertEqual(destination.read(0), 0x63)
        XCTAssertEqual(destination.iir, 0xc2, "the pending THRE interrupt survived")
        destination.write(0, 0x21)
        XCTAssertEqual(destination.transmitted, [0x21], "the restored UART still talks")
        XCTAssertEqual(destination.read(7), 0x42)
    }

    func testRestoreReportsTheLineEvenWhenUnchanged() {
        let uart = SerialHarness()
        uart.serial.restore(SerialState())
        XCTAssertEqual(uart.lineChanges, [false])
    }

    func testRestoreIntoALiveUARTReplacesEverything() {
        let source = busyUART()
        let target = SerialHarness()
        _ = target.receive([9, 9])
        target.serial.restore(source.serial.state)
        XCTAssertEqual(target.serial.state, source.serial.state)
        XCTAssertTrue(target.serial.interruptLevel)
    }

    func testRestoreKeepsInputBeyondCapacity() {
        var state = SerialState()
        state.receiveQueue = Array(0..<10)
        let small = SerialHarness(receiveCapacity: 4)
        small.serial.restore(state)
        XCTAssertEqual((0..<10).map { _ in small.read(0) }, Array(0..<10))
    }

    func testBytesRoundTrip() throws {
        let state = busyUART().serial.state
        let bytes = state.encoded()
        XCTAssertEqual(try SerialState(decoding: bytes), state)
    }

    func testEveryTruncationThrows() {
        let bytes = busyUART().serial.state.encoded()
        for length in 0..<bytes.count {
            XCTAssertThrowsError(try SerialState(decoding: bytes[0..<length]), "length \(length)") { error in
                XCTAssertTrue(error is StateDecodingError)
            }
        }
    }

    func testTrailingBytesThrow() {
        XCTAssertThrowsError(try SerialState(decoding: SerialState().encoded() + [0])) { error in
            XCTAssertEqual(error as? StateDecodingError, .trailingBytes(count: 1))
        }
    }

    func testBadValuesThrow() {
        var bytes = SerialState().encoded()
        bytes[2] = 0xf0   // IER reserved bits
        XCTAssertThrowsError(try SerialState(decoding: bytes))
        bytes = SerialState().encoded()
        bytes[9] = 2      // THRE-pending flag that is not a boolean
        XCTAssertThrowsError(try SerialState(decoding: bytes))
    }

    func testHugeQueueLengthIsRefusedBeforeAllocating() {
        var bytes = SerialState().encoded()
        bytes.replaceSubrange(10..<14, with: [0xff, 0xff, 0xff, 0xff])
        XCTAssertThrowsError(try SerialState(decoding: bytes)) { error in
            guard case .lengthTooLarge? = error as? StateDecodingError else { return XCTFail("\(error)") }
            XCTAssertTrue("\(error)".contains("serial receive queue"))
        }
    }

    func testWrongVersionIsRefused() {
        XCTAssertThrowsError(try SerialState(decoding: SerialState().encoded(), version: 99)) { error in
            XCTAssertTrue("\(error)".contains("version 99"))
        }
    }

    func testRandomGarbageNeverTraps() {
        var generator = SplitMix64(seed: 7)
        for _ in 0..<2000 {
            let length = Int(generator.next() % 40)
            let bytes = (0..<length).map { _ in UInt8(truncatingIfNeeded: generator.next()) }
            if let state = try? SerialState(decoding: bytes) {
                XCTAssertEqual(state.encoded(), bytes, "what decodes re-encodes identically")
            }
        }
    }
}
