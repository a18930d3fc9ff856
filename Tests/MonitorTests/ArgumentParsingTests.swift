import XCTest
@testable import Monitor

final class ArgumentParsingTests: XCTestCase {
    func testIntegersDecimalAndHex() throws {
        XCTAssertEqual(try MonitorArguments.parseInteger("0"), 0)
        XCTAssertEqual(try MonitorArguments.parseInteger("4096"), 4096)
        XCTAssertEqual(try MonitorArguments.parseInteger("0x400000"), 0x400000)
        XCTAssertEqual(try MonitorArguments.parseInteger("0XfFfF"), 0xffff)
        XCTAssertEqual(try MonitorArguments.parseInteger("0xffffffffffffffff"), .max)
        XCTAssertEqual(try MonitorArguments.parseInteger("18446744073709551615"), .max)
    }

    func testIntegerOverflowIsAClearError() {
        XCTAssertThrowsError(try MonitorArguments.parseInteger("18446744073709551616")) { error in
            XCTAssertEqual(error as? MonitorError, .numberTooLarge("18446744073709551616", max: .max))
            XCTAssertTrue("\(error)".contains("too large"))
        }
        XCTAssertThrowsError(try MonitorArguments.parseInteger("0x1ffffffffffffffff"))
        XCTAssertThrowsError(try MonitorArguments.parseInteger(String(repeating: "9", count: 500)))
        XCTAssertThrowsError(try MonitorArguments.parseInteger("300", max: 255)) { error in
            XCTAssertEqual(error as? MonitorError, .numberTooLarge("300", max: 255))
        }
    }

    func testMalformedIntegers() {
        for text in ["", "0x", "-1", "12a", "abc", "0x12g", "1.5", "٣", "１２", " 1"] {
            XCTAssertThrowsError(try MonitorArguments.parseInteger(text), text) { error in
                XCTAssertEqual(error as? MonitorError, .invalidNumber(text))
            }
        }
    }

    func testSizesWithSuffixes() throws {
        XCTAssertEqual(try MonitorArguments.parseSize("4096"), 4096)
        XCTAssertEqual(try MonitorArguments.parseSize("0x1000"), 4096)
        XCTAssertEqual(try MonitorArguments.parseSize("0x1b"), 0x1b)
        XCTAssertEqual(try MonitorArguments.parseSize("0x10K"), 16 << 10)
        XCTAssertEqual(try MonitorArguments.parseSize("512B"), 512)
        XCTAssertEqual(try MonitorArguments.parseSize("4k"), 4096)
        XCTAssertEqual(try MonitorArguments.parseSize("4K"), 4096)
        XCTAssertEqual(try MonitorArguments.parseSize("128M"), 128 << 20)
        XCTAssertEqual(try MonitorArguments.parseSize("2G"), 2 << 30)
        XCTAssertEqual(try MonitorArguments.parseSize("1T"), 1 << 40)
        XCTAssertEqual(try MonitorArguments.parseSize("1.5G"), 3 << 29, "fractions with a suffix, as QEMU takes them")
        XCTAssertEqual(try MonitorArguments.parseSize("1P"), 1 << 50)
    }

    func testSizeDefaultUnitAppliesOnlyToBareNumbers() throws {
        XCTAssertEqual(try MonitorArguments.parseSize("64", defaultUnit: 1 << 20), 64 << 20)
        XCTAssertEqual(try MonitorArguments.parseSize("64K", defaultUnit: 1 << 20), 64 << 10)
        XCTAssertEqual(try MonitorArguments.parseSize("100B", defaultUnit: 1 << 20), 100)
        XCTAssertThrowsError(try MonitorArguments.parseSize("17592186044416", defaultUnit: 1 << 20))
    }

    func testBadAndOverflowingSizes() {
        for text in ["", "K", "4X", "4KK", "-4K", "1.5", "1.5B", " 4K", "0x", "٣K"] {
            XCTAssertThrowsError(try MonitorArguments.parseSize(text), text) { error in
                XCTAssertEqual(error as? MonitorError, .invalidSize(text))
            }
        }
        for text in ["17179869184G", "16E", "18446744073709551616", "0x10000000000000000"] {
            XCTAssertThrowsError(try MonitorArguments.parseSize(text), text) { error in
                XCTAssertEqual(error as? MonitorError, .numberTooLarge(text, max: .max), text)
            }
        }
    }

    func testOnOff() throws {
        XCTAssertTrue(try MonitorArguments.parseOnOff("on"))
        XCTAssertFalse(try MonitorArguments.parseOnOff("off"))
        XCTAssertThrowsError(try MonitorArguments.parseOnOff("yes"))
    }

    func testFormatParsing() throws {
        let previous = MemoryDumpFormat()
        XCTAssertEqual(try MemoryDumpFormat.parse("2xg", previous: previous), MemoryDumpFormat(count: 2, style: .hex, unitSize: 8))
        XCTAssertEqual(try MemoryDumpFormat.parse("", previous: previous), MemoryDumpFormat(count: 1, style: .hex, unitSize: 4))
        XCTAssertEqual(try MemoryDumpFormat.parse("10", previous: previous), MemoryDumpFormat(count: 10, style: .hex, unitSize: 4))
        XCTAssertEqual(try MemoryDumpFormat.parse("bd", previous: previous), MemoryDumpFormat(count: 1, style: .signed, unitSize: 1))
        XCTAssertEqual(try MemoryDumpFormat.parse("3uh", previous: MemoryDumpFormat(style: .octal, unitSize: 8)),
                       MemoryDumpFormat(count: 3, style: .unsigned, unitSize: 2))
        XCTAssertEqual(try MemoryDumpFormat.parse("c", previous: MemoryDumpFormat(style: .octal, unitSize: 8)),
                       MemoryDumpFormat(count: 1, style: .character, unitSize: 8))
        XCTAssertThrowsError(try MemoryDumpFormat.parse("4q", previous: previous)) { error in
            XCTAssertEqual(error as? MonitorError, .invalidFormatCharacter("q"))
        }
        XCTAssertThrowsError(try MemoryDumpFormat.parse("99999999999999999999x", previous: previous)) { error in
            guard case .numberTooLarge? = error as? MonitorError else { return XCTFail("\(error)") }
        }
    }
}
