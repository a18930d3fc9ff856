import Devices
import XCTest

final class ACPIPMTests: XCTestCase {
    private var sci: [Bool] = []
    private var sleeps: [UInt16] = []

    private func makePM() -> ACPIPM {
        ACPIPM(onSCI: { [unowned self] in self.sci.append($0) }, onSleep: { [unowned self] in self.sleeps.append($0) })
    }

    func testPowerButtonRaisesSCIOnlyWhenEnabledAndStatusClearsByWritingOne() {
        let pm = makePM()
        pm.pressPowerButton()
        XCTAssertEqual(pm.portRead(offset: 0, size: 2), 0x100, "PWRBTN_STS")
        XCTAssertEqual(sci, [], "PWRBTN_EN is clear")
        pm.portWrite(offset: 2, size: 2, value: 0x100)
        XCTAssertEqual(sci, [true])
        XCTAssertEqual(pm.portRead(offset: 2, size: 2), 0x100)
        pm.portWrite(offset: 0, size: 2, value: 0x0001)  // a bit that is not set: nothing changes
        XCTAssertEqual(pm.portRead(offset: 0, size: 2), 0x100)
        pm.portWrite(offset: 0, size: 2, value: 0x100)
        XCTAssertEqual(pm.portRead(offset: 0, size: 2), 0)
        XCTAssertEqual(sci, [true, false])
        pm.pressPowerButton()
        XCTAssertEqual(sci, [true, false, true])
    }

    func testACPIModeIsAlwaysOn() {
        let pm = makePM()
        XCTAssertEqual(pm.portRead(offset: 4, size: 2) & 1, 1, "SCI_EN: no SMI handshake needed")
        pm.portWrite(offset: 4, size: 2, value: 0)
        XCTAssertEqual(pm.portRead(offset: 4, size: 2) & 1, 1)
    }

    /// ACPICA writes SLP_TYP first, then SLP_TYP | SLP_EN (acpi_hw_legacy_sleep).
    func testS5WithSleepEnablePowersOff() {
        let pm = makePM()
        let s5 = UInt32(ACPIPM.sleepTypeS5) << 10
        pm.portWrite(offset: 4, size: 2, value: s5 | 1)
        XCTAssertEqual(sleeps, [])
        pm.portWrite(offset: 4, size: 2, value: s5 | 1 | 1 << 13)
        XCTAssertEqual(sleeps, [ACPIPM.sleepTypeS5])
        XCTAssertEqual(pm.portRead(offset: 4, size: 2) & (1 << 13), 0, "SLP_EN reads as 0")
        // Byte-wide writes work the same: the high byte carries SLP_TYP and SLP_EN.
        pm.portWrite(offset: 5, size: 1, value: (s5 | 1 << 13) >> 8)
        XCTAssertEqual(sleeps, [ACPIPM.sleepTypeS5, ACPIPM.sleepTypeS5])
    }

    func testStateRoundTripRestoresTheSCILevel() throws {
        let pm = makePM()
        pm.portWrite(offset: 2, size: 2, value: 0x100)
        pm.pressPowerButton()
        let state = pm.state
        XCTAssertEqual(try ACPIPMState(decoding: state.encoded()), state)
        sci = []
        let restored = makePM()
        restored.restore(state)
        XCTAssertEqual(sci, [true])
        restored.restore(ACPIPMState())
        XCTAssertEqual(sci, [true, false])
        XCTAssertThrowsError(try ACPIPMState(decoding: [0, 0, 0, 0, 0, 0x20]), "SLP_EN is never stored")
        XCTAssertThrowsError(try ACPIPMState(decoding: [0, 0]))
    }

    func testUnknownOffsetsReadAllOnes() {
        let pm = makePM()
        XCTAssertEqual(pm.portRead(offset: 6, size: 1), 0xff)
        pm.portWrite(offset: 6, size: 1, value: 0xff)  // ignored
        XCTAssertEqual(sleeps, [])
    }
}
