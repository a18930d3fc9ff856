import TestSupport
import Units
import XCTest

final class SizeParsingTests: XCTestCase {
    private let mebibyte: UInt64 = 1 << 20

    func testEverySuffixInEitherCase() throws {
        let shifts: [(Character, UInt64)] = [("b", 0), ("k", 10), ("m", 20), ("g", 30), ("t", 40), ("p", 50), ("e", 60)]
        for (letter, shift) in shifts {
            for suffix in [String(letter), letter.uppercased()] {
                XCTAssertEqual(try parseSize("3" + suffix, defaultUnit: mebibyte), 3 << shift, suffix)
                XCTAssertEqual(try parseSize("0" + suffix, defaultUnit: mebibyte), 0, suffix)
            }
        }
    }

    func testBareNumbersCountTheDefaultUnit() throws {
        XCTAssertEqual(try parseSize("512", defaultUnit: mebibyte), 512 << 20)
        XCTAssertEqual(try parseSize("512", defaultUnit: 1), 512)
        XCTAssertEqual(try parseSize("0", defaultUnit: mebibyte), 0)
        XCTAssertEqual(try parseSize("007", defaultUnit: 1), 7)
        XCTAssertEqual(try parseSize("4096B", defaultUnit: mebibyte), 4096, "a suffix overrides the default unit")
        XCTAssertEqual(try parseSize("64K", defaultUnit: mebibyte), 64 << 10)
    }

    func testHexadecimal() throws {
        XCTAssertEqual(try parseSize("0x1000", defaultUnit: 1), 4096)
        XCTAssertEqual(try parseSize("0X1000", defaultUnit: 1), 4096)
        XCTAssertEqual(try parseSize("0xfFfF", defaultUnit: 1), 0xffff)
        XCTAssertEqual(try parseSize("0x10", defaultUnit: mebibyte), 16 << 20, "bare hex counts the default unit, as in QEMU")
        XCTAssertEqual(try parseSize("0x1b", defaultUnit: 1), 0x1b, "B is a hex digit here, not bytes")
        XCTAssertEqual(try parseSize("0x1E", defaultUnit: 1), 0x1e, "E is a hex digit here, not EiB")
        XCTAssertEqual(try parseSize("0x10K", defaultUnit: 1), 16 << 10)
        XCTAssertEqual(try parseSize("0x2g", defaultUnit: 1), 2 << 30)
        XCTAssertEqual(try parseSize("0xffffffffffffffff", defaultUnit: 1), .max)
        XCTAssertEqual(try parseSize("0x0", defaultUnit: mebibyte), 0)
    }

    func testFractionsNeedAUnitLargerThanAByte() throws {
        XCTAssertEqual(try parseSize("1.5G", defaultUnit: 1), 3 << 29)
        XCTAssertEqual(try parseSize("1.5M", defaultUnit: 1), 3 << 19)
        XCTAssertEqual(try parseSize("0.5k", defaultUnit: 1), 512)
        XCTAssertEqual(try parseSize(".5K", defaultUnit: 1), 512, "QEMU accepts a fraction without a whole part")
        XCTAssertEqual(try parseSize("1.K", defaultUnit: 1), 1024, "QEMU accepts a point without digits after it")
        XCTAssertEqual(try parseSize("1.5", defaultUnit: mebibyte), 3 << 19, "the default unit scales a fraction too")
        XCTAssertEqual(try parseSize("0.25E", defaultUnit: 1), 1 << 58)
        XCTAssertEqual(try parseSize("1.0B", defaultUnit: 1), 1, "a zero fraction is no fraction")
        XCTAssertEqual(try parseSize("1.00000", defaultUnit: 1), 1)
        XCTAssertEqual(try parseSize("15.5E", defaultUnit: 1), 31 << 59)
        XCTAssertEqual(try parseSize("1.1K", defaultUnit: 1), 1126, "1126.4 rounds down")
        XCTAssertEqual(try parseSize("1.0005K", defaultUnit: 1), 1025, "1024.512 rounds up")
        XCTAssertEqual(try parseSize("0.000000000000000000001E", defaultUnit: 1), 0)
        XCTAssertEqual(try parseSize("12.\(String(repeating: "3", count: 200))K", defaultUnit: 1), 12629,
                       "long fractions are exact to 2^-64, not read through a double")
    }

    func testRefusals() {
        let cases: [(String, SizeParseError)] = [
            ("", .empty),
            ("-1", .negative), ("-5G", .negative), ("-0", .negative), ("-", .negative), ("-0x10", .negative),
            ("G", .notANumber), ("abc", .notANumber), (".", .notANumber), (".K", .notANumber),
            ("0x", .notANumber), ("0xK", .notANumber), ("0x.5K", .notANumber), ("x10", .notANumber),
            (" 12", .notANumber), ("\t12", .notANumber), ("+12", .notANumber), ("١٢", .notANumber),
            ("１２", .notANumber),
            ("12Q", .unknownSuffix("Q")), ("12MB", .unknownSuffix("MB")), ("12KiB", .unknownSuffix("KiB")),
            ("12 ", .unknownSuffix(" ")), ("12 K", .unknownSuffix(" K")), ("12K ", .unknownSuffix("K ")),
            ("4KK", .unknownSuffix("KK")), ("0x10Q", .unknownSuffix("Q")), ("0x1.8K", .unknownSuffix(".8K")),
            ("1.2.3K", .unknownSuffix(".3K")), ("1e3", .unknownSuffix("e3")), ("1.5e3", .unknownSuffix("e3")),
            ("12\u{00e9}", .unknownSuffix("\u{00e9}")), ("1,5K", .unknownSuffix(",5K")), ("1\0", .unknownSuffix("\0")),
            ("1.5", .fractionOfAByte), ("1.5B", .fractionOfAByte), ("0.1b", .fractionOfAByte),
        ]
        for (text, expected) in cases {
            XCTAssertThrowsError(try parseSize(text, defaultUnit: 1), text) { error in
                XCTAssertEqual(error as? SizeParseError, expected, text)
            }
        }
    }

    func testOverflowAtTwoToTheSixtyFour() throws {
        XCTAssertEqual(try parseSize("18446744073709551615", defaultUnit: 1), .max)
        XCTAssertEqual(try parseSize("18446744073709551615B", defaultUnit: 1), .max)
        XCTAssertEqual(try parseSize("17179869183G", defaultUnit: 1), 17_179_869_183 << 30)
        XCTAssertEqual(try parseSize("15E", defaultUnit: 1), 15 << 60)
        XCTAssertEqual(try parseSize("17592186044415", defaultUnit: mebibyte), 17_592_186_044_415 << 20)
        let tooLarge = [
            "18446744073709551616", "99999999999999999999999999", "0x10000000000000000", "0x1ffffffffffffffff",
            "17179869184G", "18446744073709551615K", "16E", "16.0E", "15.9999999999999999999999999999E",
            "16384P", String(repeating: "9", count: 500) + "K",
        ]
        for text in tooLarge {
            XCTAssertThrowsError(try parseSize(text, defaultUnit: 1), text) { error in
                XCTAssertEqual(error as? SizeParseError, .tooLarge, text)
            }
        }
        XCTAssertThrowsError(try parseSize("17592186044416", defaultUnit: mebibyte)) {
            XCTAssertEqual($0 as? SizeParseError, .tooLarge)
        }
    }

    func testErrorsPrintWhatToDo() {
        XCTAssertEqual("\(SizeParseError.unknownSuffix("Q"))", "unknown suffix 'Q' (use B, K, M, G, T, P or E)")
        XCTAssertEqual("\(SizeParseError.fractionOfAByte)", "a fraction needs a unit larger than a byte, such as 1.5K")
        XCTAssertEqual("\(SizeParseError.tooLarge)", "the size does not fit in 64 bits")
    }

    /// Random texts built from the characters a size is made of, and some that it is not,
    /// must each parse or throw a SizeParseError: never trap. Accepted ones are checked against
    /// a plain reading of the same text.
    func testRandomTextsNeverTrap() {
        let alphabet = Array("0123456789.xXbBkKmMgGtTpPeEfF- +Q\u{00e9}\u{0663}")
        var generator = SplitMix64(seed: 0x5153_495a_4553)
        for _ in 0..<20_000 {
            let length = Int(generator.next() % 24)
            let text = String((0..<length).map { _ in alphabet[Int(generator.next() % UInt64(alphabet.count))] })
            let defaultUnit: UInt64 = [1, 1 << 10, 1 << 20, 0, .max][Int(generator.next() % 5)]
            do {
                let bytes = try parseSize(text, defaultUnit: defaultUnit)
                if let whole = UInt64(text) {
                    XCTAssertEqual(bytes, whole.multipliedReportingOverflow(by: defaultUnit).partialValue, text)
                }
            } catch let error as SizeParseError {
                XCTAssertFalse("\(error)".isEmpty, text)
            } catch {
                XCTFail("\(text): unexpected \(error)")
            }
        }
    }
}
