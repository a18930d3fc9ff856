import XCTest
@testable import swiftkvm

final class SizeParserTests: XCTestCase {
    func testSuffixes() throws {
        XCTAssertEqual(try parseSize("512", defaultUnit: 1 << 20), 512 << 20)
        XCTAssertEqual(try parseSize("512", defaultUnit: 1), 512)
        XCTAssertEqual(try parseSize("64K", defaultUnit: 1 << 20), 64 << 10)
        XCTAssertEqual(try parseSize("64k", defaultUnit: 1 << 20), 64 << 10)
        XCTAssertEqual(try parseSize("3M", defaultUnit: 1), 3 << 20)
        XCTAssertEqual(try parseSize("2g", defaultUnit: 1), 2 << 30)
        XCTAssertEqual(try parseSize("1T", defaultUnit: 1), 1 << 40)
        XCTAssertEqual(try parseSize("4096B", defaultUnit: 1 << 20), 4096)
        XCTAssertEqual(try parseSize("0", defaultUnit: 1 << 20), 0)
    }

    func testErrors() {
        let cases: [(String, SizeError)] = [
            ("", .empty), ("-1", .negative), ("-5G", .negative), ("G", .notANumber), ("abc", .notANumber),
            ("12Q", .unknownSuffix), ("12MB", .unknownSuffix), ("1.5G", .unknownSuffix), (" 12", .notANumber),
            ("12 ", .unknownSuffix), ("+12", .notANumber), ("0x10", .unknownSuffix), ("١٢", .notANumber),
            ("18446744073709551616", .tooLarge), ("99999999999999999999999999", .tooLarge),
            ("17179869184G", .tooLarge), ("18446744073709551615K", .tooLarge),
        ]
        for (text, expected) in cases {
            XCTAssertThrowsError(try parseSize(text, defaultUnit: 1 << 20), text) { error in
                XCTAssertEqual(error as? SizeError, expected, text)
            }
        }
        XCTAssertEqual(try parseSize("18446744073709551615", defaultUnit: 1), UInt64.max)
    }
}
