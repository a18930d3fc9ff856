import Units
import XCTest
@testable import swiftkvm

/// How `-m` reads sizes and words its refusals; the parsing itself is tested in UnitsTests.
final class SizeParserTests: XCTestCase {
    private func memory(_ text: String) throws -> UInt64 {
        try MachineOptionParsing.memorySize(text)
    }

    func testBareNumbersAreMiBAndQEMUSyntaxIsAccepted() throws {
        XCTAssertEqual(try memory("512"), 512 << 20)
        XCTAssertEqual(try memory("4096k"), 4 << 20)
        XCTAssertEqual(try memory("1.5G"), 3 << 29, "fractions with a suffix, as QEMU takes them")
        XCTAssertEqual(try memory("2.5"), 5 << 19, "a bare fraction is MiB too")
        XCTAssertEqual(try memory("0x100"), 256 << 20, "bare hex is MiB, as in QEMU")
        XCTAssertEqual(try memory("0x40000K"), 256 << 20)
        XCTAssertEqual(try memory("0x10B"), 0x10b << 20, "B is a hex digit after 0x, so this is 267 MiB")
    }

    func testRefusalsNameTheOptionAndWhatToDo() {
        let invalid: [(String, SizeParseError)] = [
            ("12Q", .unknownSuffix("Q")), ("12MB", .unknownSuffix("MB")), (" 12", .notANumber), ("+12", .notANumber),
            ("-5G", .negative), ("", .empty), ("3145728.5B", .fractionOfAByte),
        ]
        for (text, problem) in invalid {
            XCTAssertThrowsError(try memory(text), text) { error in
                XCTAssertEqual(error as? OptionError, .invalidSize(option: "-m", text: text, problem: problem), text)
                XCTAssertEqual("\(error)", "swiftkvm: -m: invalid size '\(text)' (use a number with an optional B, K, M, G, T, P or E suffix)")
            }
        }
        for text in ["18446744073709551616", "17179869184G", "16E", "0x1ffffffffffffffff"] {
            XCTAssertThrowsError(try memory(text), text) { error in
                XCTAssertEqual("\(error)", "swiftkvm: -m \(text): too much memory (at most 64 GiB)")
            }
        }
    }
}
