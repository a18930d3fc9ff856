import XCTest
@testable import Devices

final class CMOSTests: XCTestCase {
    // Tuesday 2026-11-03 17:45:09 UTC.
    private let fixed = RTCDateTime(year: 2026, month: 11, day: 3, weekday: 3, hour: 17, minute: 45, second: 9)

    private func read(_ cmos: CMOS, _ index: UInt8) -> UInt8 {
        cmos.portWrite(offset: 0, size: 1, value: UInt32(index))
        return UInt8(cmos.portRead(offset: 1, size: 1))
    }

    private func write(_ cmos: CMOS, _ index: UInt8, _ value: UInt8) {
        cmos.portWrite(offset: 0, size: 1, value: UInt32(index))
        cmos.portWrite(offset: 1, size: 1, value: UInt32(value))
    }

    func testBCDTimeByDefault() {
        let cmos = CMOS(clock: { self.fixed })
        let registers: [UInt8] = [0x00, 0x02, 0x04, 0x06, 0x07, 0x08, 0x09, 0x32]
        XCTAssertEqual(registers.map { read(cmos, $0) }, [0x09, 0x45, 0x17, 0x03, 0x03, 0x11, 0x26, 0x20])
    }

    func testBinaryMode() {
        let cmos = CMOS(clock: { self.fixed })
        write(cmos, 0x0b, 0x02 | 0x04)
        let registers: [UInt8] = [0x00, 0x02, 0x04, 0x06, 0x07, 0x08, 0x09, 0x32]
        XCTAssertEqual(registers.map { read(cmos, $0) }, [9, 45, 17, 3, 3, 11, 26, 20])
    }

    func testTwelveHourMode() {
        var now = fixed
        let cmos = CMOS(clock: { now })
        write(cmos, 0x0b, 0x00)
        XCTAssertEqual(read(cmos, 0x04), 0x85, "5 PM in BCD with the PM bit")
        now.hour = 0
        XCTAssertEqual(read(cmos, 0x04), 0x12, "midnight is 12 AM")
        now.hour = 12
        XCTAssertEqual(read(cmos, 0x04), 0x92, "noon is 12 PM")
        write(cmos, 0x0b, 0x04)
        now.hour = 23
        XCTAssertEqual(read(cmos, 0x04), 0x80 | 11, "binary 12-hour")
    }

    func testStatusRegisters() {
        let cmos = CMOS(clock: { self.fixed })
        XCTAssertEqual(read(cmos, 0x0a) & 0x80, 0, "never update-in-progress")
        write(cmos, 0x0a, 0xa6)
        XCTAssertEqual(read(cmos, 0x0a), 0x26, "rate bits kept, UIP not writable")
        XCTAssertEqual(read(cmos, 0x0b), 0x02)
        XCTAssertEqual(read(cmos, 0x0c), 0)
        XCTAssertEqual(read(cmos, 0x0d), 0x80)
        write(cmos, 0x0d, 0)
        XCTAssertEqual(read(cmos, 0x0d), 0x80)
    }

    func testNMIMaskBitIsKeptApartFromTheIndex() {
        let cmos = CMOS(clock: { self.fixed })
        cmos.portWrite(offset: 0, size: 1, value: 0x80 | 0x0d)
        XCTAssertTrue(cmos.state.nmiMasked)
        XCTAssertEqual(cmos.state.index, 0x0d)
        XCTAssertEqual(cmos.portRead(offset: 1, size: 1), 0x80)
        cmos.portWrite(offset: 0, size: 1, value: 0x0d)
        XCTAssertFalse(cmos.state.nmiMasked)
        XCTAssertEqual(cmos.portRead(offset: 0, size: 1), 0xff)
    }

    func testRAMHoldsValues() throws {
        let cmos = CMOS(clock: { self.fixed })
        write(cmos, 0x40, 0xab)
        write(cmos, 0x7f, 0xcd)
        XCTAssertEqual(read(cmos, 0x40), 0xab)
        XCTAssertEqual(read(cmos, 0x7f), 0xcd)
        cmos.setRAM(0x12, at: 0x34)
        XCTAssertEqual(read(cmos, 0x34), 0x12)

        let state = cmos.state
        let copy = CMOS(clock: { self.fixed })
        copy.restore(try CMOSState(decoding: state.encoded()))
        XCTAssertEqual(read(copy, 0x40), 0xab)
        XCTAssertEqual(copy.state.ram, cmos.state.ram)
    }

    func testBadStateBytesThrow() {
        var bytes = CMOSState().encoded()
        bytes[0] = 0x80
        XCTAssertThrowsError(try CMOSState(decoding: bytes))
        let short = CMOSState().encoded().dropLast()
        XCTAssertThrowsError(try CMOSState(decoding: short))
        var wrongLength = CMOSState().encoded()
        wrongLength.replaceSubrange(2..<6, with: [4, 0, 0, 0])
        XCTAssertThrowsError(try CMOSState(decoding: wrongLength.prefix(10)))
    }

    func testCalendarFromEpochSeconds() {
        XCTAssertEqual(RTCDateTime(secondsSinceEpoch: 0),
                       RTCDateTime(year: 1970, month: 1, day: 1, weekday: 5, hour: 0, minute: 0, second: 0))
        // 2000-02-29 12:34:56 UTC, a Tuesday.
        XCTAssertEqual(RTCDateTime(secondsSinceEpoch: 951_827_696),
                       RTCDateTime(year: 2000, month: 2, day: 29, weekday: 3, hour: 12, minute: 34, second: 56))
        // 2026-11-29 23:59:59 UTC, a Sunday.
        XCTAssertEqual(RTCDateTime(secondsSinceEpoch: 1_795_996_799),
                       RTCDateTime(year: 2026, month: 11, day: 29, weekday: 1, hour: 23, minute: 59, second: 59))
    }
}

final class StateCodingTests: XCTestCase {
    func testIntegersAreLittleEndian() throws {
        var writer = ByteWriter()
        writer.write(UInt16(0x0102))
        writer.write(UInt32(0x0304_0506))
        writer.write(UInt64(0x0708_090a_0b0c_0d0e))
        writer.write(true)
        writer.writeBytes([9, 8])
        XCTAssertEqual(writer.bytes, [2, 1, 6, 5, 4, 3, 0x0e, 0x0d, 0x0c, 0x0b, 0x0a, 9, 8, 7, 1, 2, 0, 0, 0, 9, 8])
        var reader = ByteReader(writer.bytes)
        XCTAssertEqual(try reader.read(UInt16.self, field: "a"), 0x0102)
        XCTAssertEqual(try reader.read(UInt32.self, field: "b"), 0x0304_0506)
        XCTAssertEqual(try reader.read(UInt64.self, field: "c"), 0x0708_090a_0b0c_0d0e)
        XCTAssertEqual(try reader.readBool(field: "d"), true)
        XCTAssertEqual(try reader.readBytes(maximumCount: 2, field: "e"), [9, 8])
        XCTAssertNoThrow(try reader.expectEnd())
    }

    func testErrorsNameTheField() {
        var reader = ByteReader([1, 2, 3])
        XCTAssertThrowsError(try reader.read(UInt32.self, field: "widget count")) { error in
            XCTAssertEqual(error as? StateDecodingError, .truncated(field: "widget count", needed: 4, remaining: 3))
            XCTAssertTrue("\(error)".contains("widget count"))
        }
        var lengthy = ByteReader([3, 0, 0, 0, 1])
        XCTAssertThrowsError(try lengthy.readBytes(maximumCount: 2, field: "blob"))
        var short = ByteReader([3, 0, 0, 0, 1])
        XCTAssertThrowsError(try short.readBytes(maximumCount: 8, field: "blob")) { error in
            XCTAssertEqual(error as? StateDecodingError, .truncated(field: "blob", needed: 3, remaining: 1))
        }
    }
}
