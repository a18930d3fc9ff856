import XCTest
@testable import Devices

final class SerialRegisterTests: XCTestCase {
    func testResetValues() {
        let uart = SerialHarness()
        XCTAssertEqual(uart.read(1), 0)
        XCTAssertEqual(uart.read(3), 0x03)
        XCTAssertEqual(uart.read(4), 0x08)
        XCTAssertEqual(uart.lsr, 0x60, "THRE and TEMT")
        XCTAssertEqual(uart.msr, 0xb0, "CTS, DSR, DCD from the host end")
    }

    func testTransmitGoesToTheHostAndTHREStaysSet() {
        let uart = SerialHarness()
        for byte in Array("hi\n".utf8) { uart.write(0, byte) }
        XCTAssertEqual(uart.transmitted, Array("hi\n".utf8))
        XCTAssertEqual(uart.lsr & 0x60, 0x60)
    }

    func testDataReadyFollowsTheQueue() {
        let uart = SerialHarness()
        XCTAssertEqual(uart.lsr & 0x01, 0)
        _ = uart.receive([7])
        XCTAssertEqual(uart.lsr & 0x01, 0x01)
        XCTAssertEqual(uart.read(0), 7)
        XCTAssertEqual(uart.lsr & 0x01, 0)
        XCTAssertEqual(uart.read(0), 0, "reading an empty RBR gives 0")
    }

    func testDivisorLatchesShareOffsetsZeroAndOne() {
        let uart = SerialHarness()
        uart.write(1, 0x05)          // IER
        uart.write(3, 0x83)          // DLAB on
        XCTAssertEqual(uart.read(0), 0x0c, "default divisor: 9600 baud")
        uart.write(0, 0x01)          // DLL = 1 (115200 baud)
        uart.write(1, 0x02)          // DLM
        XCTAssertEqual(uart.read(0), 0x01)
        XCTAssertEqual(uart.read(1), 0x02)
        XCTAssertEqual(uart.transmitted, [], "DLL write is not a THR write")
        uart.write(3, 0x03)          // DLAB off
        XCTAssertEqual(uart.read(1), 0x05, "IER untouched")
        XCTAssertEqual(uart.read(3), 0x03)
        let state = uart.serial.state
        XCTAssertEqual(state.divisorLow, 0x01)
        XCTAssertEqual(state.divisorHigh, 0x02)
    }

    func testIERKeepsOnlyTheLowNibble() {
        let uart = SerialHarness()
        uart.write(1, 0xff)
        XCTAssertEqual(uart.read(1), 0x0f)
    }

    func testScratchRegister() {
        let uart = SerialHarness()
        uart.write(7, 0xa5)
        XCTAssertEqual(uart.read(7), 0xa5)
    }

    func testFifoEnableShowsInIIRTopBits() {
        let uart = SerialHarness()
        uart.write(2, 0x01)
        XCTAssertEqual(uart.iir, 0xc1)
        uart.write(2, 0x00)
        XCTAssertEqual(uart.iir, 0x01)
    }

    func testReceiveFifoResetEmptiesTheQueue() {
        let uart = SerialHarness()
        uart.write(2, 0x01)
        _ = uart.receive([1, 2, 3])
        uart.write(2, 0x01 | 0x02)
        XCTAssertEqual(uart.lsr & 0x01, 0)
        XCTAssertEqual(uart.serial.state.fifoControl, 0x01, "reset bits clear themselves")
    }

    func testTriggerLevelsChooseBetweenTimeoutAndDataAvailable() {
        for (fcr, level) in [(UInt8(0x01), 1), (0x41, 4), (0x81, 8), (0xc1, 14)] {
            let uart = SerialHarness()
            uart.write(2, fcr)
            uart.write(1, 0x01)
            if level > 1 {
                _ = uart.receive(Array(repeating: 0x30, count: level - 1))
                XCTAssertEqual(uart.iir, 0xcc, "below trigger \(level): character timeout")
                XCTAssertTrue(uart.serial.interruptLevel)
            }
            let total = level > 1 ? level - 1 : 0
            _ = uart.receive(Array(repeating: 0x31, count: level - total))
            XCTAssertEqual(uart.iir, 0xc4, "at trigger \(level): data available")
            _ = uart.read(0)
            if level > 1 { XCTAssertEqual(uart.iir, 0xcc, "below trigger again after a read") }
        }
    }

    func testWithoutFifosAnyByteIsDataAvailable() {
        let uart = SerialHarness()
        uart.write(1, 0x01)
        _ = uart.receive([1])
        XCTAssertEqual(uart.iir, 0x04)
    }

    func testReceiveQueueIsBoundedAndAcceptsPartially() {
        let uart = SerialHarness(receiveCapacity: 4)
        XCTAssertEqual(uart.receive([1, 2, 3]), 3)
        XCTAssertEqual(uart.receive([4, 5, 6]), 1, "only one byte of room")
        XCTAssertEqual(uart.serial.receiveSpace, 0)
        XCTAssertEqual(uart.receive([5]), 0)
        XCTAssertEqual(uart.lsr & 0x02, 0, "host input that is refused is not an overrun")
        XCTAssertEqual(uart.read(0), 1)
        XCTAssertEqual(uart.receive([5, 6]), 1)
        XCTAssertEqual((0..<4).map { _ in uart.read(0) }, [2, 3, 4, 5])
    }

    func testLoopbackSendsTransmitToReceive() {
        let uart = SerialHarness()
        uart.write(4, 0x10)
        uart.write(0, 0x5a)
        XCTAssertEqual(uart.transmitted, [])
        XCTAssertEqual(uart.lsr & 0x01, 0x01)
        XCTAssertEqual(uart.read(0), 0x5a)
        XCTAssertEqual(uart.receive([1]), 0, "the host is disconnected in loopback")
    }

    func testLoopbackOverrunSetsOE() {
        let uart = SerialHarness(receiveCapacity: 2)
        uart.write(4, 0x10)
        uart.write(0, 1); uart.write(0, 2); uart.write(0, 3)
        XCTAssertEqual(uart.lsr, 0x63, "DR, OE, THRE, TEMT")
        XCTAssertEqual(uart.lsr, 0x61, "OE clears on read")
        XCTAssertEqual(uart.read(0), 1)
        XCTAssertEqual(uart.read(0), 2)
    }

    func testLoopbackModemStatusMapping() {
        let uart = SerialHarness()
        uart.write(4, 0x10)
        _ = uart.msr
        let cases: [(mcr: UInt8, lines: UInt8)] = [(0x01, 0x20), (0x02, 0x10), (0x04, 0x40), (0x08, 0x80), (0x0f, 0xf0), (0, 0)]
        for (mcr, lines) in cases {
            uart.write(4, 0x10 | mcr)
            _ = uart.msr
            XCTAssertEqual(uart.msr, lines, "MCR \(mcr)")
        }
    }

    func testModemStatusDeltaBits() {
        let uart = SerialHarness()
        uart.write(4, 0x10)            // loopback, all lines drop from the host's CTS|DSR|DCD
        XCTAssertEqual(uart.msr, 0x0b, "DCTS, DDSR, DDCD")
        uart.write(4, 0x10 | 0x04)     // RI rises: no delta (trailing edge only)
        XCTAssertEqual(uart.msr, 0x40)
        uart.write(4, 0x10)            // RI falls: TERI
        XCTAssertEqual(uart.msr, 0x04)
        XCTAssertEqual(uart.msr, 0x00)
        uart.write(4, 0x00)            // back to the host's lines
        XCTAssertEqual(uart.msr, 0xbb)
    }

    func testBreakInLoopbackSetsBIAndFifoError() {
        let uart = SerialHarness()
        uart.write(2, 0x01)
        uart.write(4, 0x10)
        uart.write(3, 0x43)
        XCTAssertEqual(uart.lsr, 0xf0, "FIFO error, TEMT, THRE, BI")
        XCTAssertEqual(uart.lsr, 0x60)
    }

    func testWiderAccessUsesTheLowByte() {
        let uart = SerialHarness()
        uart.serial.portWrite(offset: 7, size: 2, value: 0x1234)
        XCTAssertEqual(uart.serial.portRead(offset: 7, size: 2), 0x34)
    }
}
