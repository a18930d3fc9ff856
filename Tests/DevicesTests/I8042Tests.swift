import Devices
import XCTest

/// The i8042 as Linux's i8042 driver probes it (drivers/input/serio/i8042.c).
final class I8042Tests: XCTestCase {
    private var resets = 0
    private var lines: [(irq: UInt32, level: Bool)] = []

    private func makeController() -> I8042 {
        I8042(onReset: { [unowned self] in self.resets += 1 }, onInterrupt: { [unowned self] irq, level in self.lines.append((irq, level)) })
    }

    private func command(_ c: I8042, _ byte: UInt8) { c.portWrite(offset: 4, size: 1, value: UInt32(byte)) }
    private func data(_ c: I8042, _ byte: UInt8) { c.portWrite(offset: 0, size: 1, value: UInt32(byte)) }
    private func status(_ c: I8042) -> UInt8 { UInt8(c.portRead(offset: 4, size: 1)) }
    private func readData(_ c: I8042) -> UInt8 { UInt8(c.portRead(offset: 0, size: 1)) }

    /// i8042_command's wait: the answer is there at once, with the output-buffer-full bit.
    private func answer(_ c: I8042) -> UInt8? {
        guard status(c) & 0x01 != 0 else { return nil }
        return readData(c)
    }

    func testLinuxProbeSequence() {
        let c = makeController()
        XCTAssertEqual(status(c) & 0x01, 0, "nothing to flush at power-on")
        command(c, 0xaa)
        XCTAssertEqual(answer(c), 0x55, "controller self-test")
        command(c, 0x20)
        XCTAssertEqual(answer(c), 0x45, "CTR as a BIOS leaves it")
        command(c, 0x60); data(c, 0x47)
        command(c, 0x20)
        XCTAssertEqual(answer(c), 0x47, "CTR written and read back")
        XCTAssertNil(answer(c), "the buffer empties once read")
        command(c, 0xab)
        XCTAssertEqual(answer(c), 0x00, "keyboard port test")
        XCTAssertEqual(status(c) & 0x04, 0x04, "system flag")
    }

    func testPortEnableCommandsToggleTheCTR() {
        let c = makeController()
        command(c, 0xa7); XCTAssertEqual(c.state.commandByte & 0x20, 0x20)
        command(c, 0xa8); XCTAssertEqual(c.state.commandByte & 0x20, 0)
        command(c, 0xad); XCTAssertEqual(c.state.commandByte & 0x10, 0x10)
        command(c, 0xae); XCTAssertEqual(c.state.commandByte & 0x10, 0)
        XCTAssertNil(answer(c), "none of them answers")
    }

    func testAbsentKeyboardAnswersWithTimeoutAndIRQ1() {
        let c = makeController()
        data(c, 0xf2)  // atkbd's GET ID
        XCTAssertEqual(status(c) & 0x41, 0x41, "output full with the timeout bit")
        XCTAssertEqual(lines.last?.irq, 1); XCTAssertEqual(lines.last?.level, true)
        XCTAssertEqual(readData(c), 0xfe)
        XCTAssertEqual(status(c) & 0x41, 0)
        XCTAssertEqual(lines.last?.irq, 1); XCTAssertEqual(lines.last?.level, false, "reading the byte lowers IRQ 1")
    }

    func testMouseLoopbackRaisesIRQ12WhenEnabled() {
        let c = makeController()
        command(c, 0xd3); data(c, 0x5a)
        XCTAssertEqual(status(c) & 0x21, 0x21, "mouse data waiting")
        XCTAssertTrue(lines.isEmpty, "CTR bit 1 is clear: no IRQ 12")
        XCTAssertEqual(readData(c), 0x5a)
        command(c, 0x60); data(c, 0x47)
        command(c, 0xd3); data(c, 0x5a)
        XCTAssertEqual(lines.last?.irq, 12); XCTAssertEqual(lines.last?.level, true)
        command(c, 0xd4); data(c, 0xff)  // reset the (absent) mouse
        XCTAssertEqual(status(c) & 0x61, 0x61)
        XCTAssertEqual(readData(c), 0xfe)
    }

    func testResetThroughCommandAndOutputPort() {
        let c = makeController()
        command(c, 0xfe)
        XCTAssertEqual(resets, 1)
        command(c, 0xd0)
        XCTAssertEqual(answer(c), 0x01)
        command(c, 0xd1); data(c, 0xfe)  // bit 0 low: reset
        XCTAssertEqual(resets, 2)
        XCTAssertEqual(c.portRead(offset: 1, size: 1), 0xff, "0x61 belongs to KVM's PIT")
    }

    func testStateRoundTripAndBadBytes() throws {
        let c = makeController()
        command(c, 0x60)
        data(c, 0x03)
        data(c, 0xed)  // leaves a 0xFE waiting
        command(c, 0x60)
        let state = c.state
        XCTAssertEqual(try I8042State(decoding: state.encoded()), state)
        let restored = makeController()
        restored.restore(state)
        XCTAssertEqual(lines.last?.level, true, "a restored waiting byte raises its IRQ again")
        XCTAssertEqual(readData(restored), 0xfe)
        data(restored, 0x11)
        XCTAssertEqual(restored.state.commandByte, 0x11, "the pending command survived")
        XCTAssertThrowsError(try I8042State(decoding: [1, 2]))
        XCTAssertThrowsError(try I8042State(decoding: [0x45, 1, 0x77, 0, 0, 0, 0, 0]))
        XCTAssertThrowsError(try I8042State(decoding: [0x45, 1, 0, 0, 2, 0, 0, 0]), "a flag that is neither 0 nor 1")
    }

    /// Version 1 is the minimal controller's state (command byte, output port, pending command):
    /// a migration from such a build arrives with an empty output buffer.
    func testReadsVersionOneState() throws {
        let old = try I8042State(decoding: [0x47, 0x01, 0x60], version: 1)
        var expected = I8042State()
        expected.commandByte = 0x47
        expected.pendingCommand = 0x60
        XCTAssertEqual(old, expected)
        XCTAssertThrowsError(try I8042State(decoding: [0x47, 0x01, 0x60, 0], version: 1), "trailing bytes")
        XCTAssertThrowsError(try I8042State(decoding: [0x47, 0x01, 0x60], version: 2), "too short for version 2")
        XCTAssertThrowsError(try I8042State(decoding: I8042State().encoded(), version: 3))
    }
}
