import XCTest
@testable import Monitor

final class MemoryDumpTests: XCTestCase {
    private var backend: FakeMonitorBackend!
    private var monitor: CommandInterpreter!

    override func setUp() {
        backend = FakeMonitorBackend(ramSize: 8 << 20)
        backend.poke(0x400000, Array(repeating: 0, count: 64))
        backend.poke(0x1000, [0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef,
                              0xfe, 0xdc, 0xba, 0x98, 0x76, 0x54, 0x32, 0x10,
                              0x41, 0x27, 0x5c, 0x0a, 0x0d, 0x00, 0x7f, 0x20])
        monitor = CommandInterpreter(backend: backend)
    }

    private func run(_ line: String, file: StaticString = #filePath, line number: UInt = #line) -> String {
        let outcome = monitor.execute(line)
        XCTAssertNil(outcome.error, "\(line): \(outcome.error ?? "")", file: file, line: number)
        return outcome.output
    }

    func testQEMUExample() {
        XCTAssertEqual(run("xp /2xg 0x400000"), "0000000000400000: 0x0000000000000000 0x0000000000000000\n")
    }

    /// Lines captured from QEMU 7.2 (Debian) dumping the BIOS reset vector of a `-S` machine.
    func testMatchesQEMUOutputAtTheResetVector() {
        backend.poke(0xffff0, [0xea, 0x5b, 0xe0, 0x00, 0xf0, 0x30, 0x36, 0x2f,
                               0x32, 0x33, 0x2f, 0x39, 0x39, 0x00, 0xfc, 0x00])
        backend.poke(0x100000, Array(repeating: 0, count: 16))
        backend.poke(0, Array(repeating: 0, count: 16))
        let captured: [(String, String)] = [
            ("xp /10xb 0xffff0", "00000000000ffff0: 0xea 0x5b 0xe0 0x00 0xf0 0x30 0x36 0x2f\n00000000000ffff8: 0x32 0x33\n"),
            ("xp /9xh 0xffff0", "00000000000ffff0: 0x5bea 0x00e0 0x30f0 0x2f36 0x3332 0x392f 0x0039 0x00fc\n"
                + "0000000000100000: 0x0000\n"),
            ("xp /5xw 0xffff0", "00000000000ffff0: 0x00e05bea 0x2f3630f0 0x392f3332 0x00fc0039\n0000000000100000: 0x00000000\n"),
            ("xp /3xg 0xffff0", "00000000000ffff0: 0x2f3630f000e05bea 0x00fc0039392f3332\n0000000000100000: 0x0000000000000000\n"),
            ("xp /4db 0xffff0", "00000000000ffff0: 234  91 224   0\n"),
            ("xp /4ub 0xffff0", "00000000000ffff0: 234  91 224   0\n"),
            ("xp /2uh 0xffff0", "00000000000ffff0: 23530   224\n"),
            ("xp /1dg 0xffff0", "00000000000ffff0:  3401960375889976298\n"),
            ("xp /3ob 0xffff0", "00000000000ffff0: 0352 0133 0340\n"),
            ("xp /1oh 0", "0000000000000000:      0\n"),
            ("xp /1og 0", "0000000000000000:                      0\n"),
            ("xp /8cb 0xffff0", #"00000000000ffff0: '\xea' '[' '\xe0' '\x00' '\xf0' '0' '6' '/'"# + "\n"),
            ("xp /2cw 0xffff0", #"00000000000ffff0: '\xea' '[' '\xe0' '\x00' '\xf0' '0' '6' '/'"# + "\n"),
            ("xp 0", #"0000000000000000: '\x00' '\x00' '\x00' '\x00'"# + "\n"),
            ("xp /2xg 0xfffffffffffffff8", "fffffffffffffff8: Cannot access memory\n"),
        ]
        for (line, expected) in captured {
            XCTAssertEqual(run(line), expected, line)
        }
    }

    func testHexBytesEightPerLine() {
        XCTAssertEqual(run("xp /10xb 0x1000"), """
            0000000000001000: 0x01 0x23 0x45 0x67 0x89 0xab 0xcd 0xef
            0000000000001008: 0xfe 0xdc

            """)
    }

    func testHexHalfwordsEightPerLine() {
        XCTAssertEqual(run("xp /9xh 0x1000"), """
            0000000000001000: 0x2301 0x6745 0xab89 0xefcd 0xdcfe 0x98ba 0x5476 0x1032
            0000000000001010: 0x2741

            """)
    }

    func testHexWordsFourPerLine() {
        XCTAssertEqual(run("xp /5xw 0x1000"), """
            0000000000001000: 0x67452301 0xefcdab89 0x98badcfe 0x10325476
            0000000000001010: 0x0a5c2741

            """)
    }

    func testHexGiantsTwoPerLine() {
        XCTAssertEqual(run("xp /3xg 0x1000"), """
            0000000000001000: 0xefcdab8967452301 0x1032547698badcfe
            0000000000001010: 0x207f000d0a5c2741

            """)
    }

    func testDefaultsAreOneHexWord() {
        XCTAssertEqual(run("xp 0x1000"), "0000000000001000: 0x67452301\n")
    }

    func testFormatAndSizeAreRememberedButCountIsNot() {
        _ = run("xp /4db 0x1000")
        XCTAssertEqual(run("xp 0x1000"), "0000000000001000:   1\n")
        XCTAssertEqual(run("xp /2 0x1000"), "0000000000001000:   1  35\n")
        XCTAssertEqual(run("xp /x 0x1000"), "0000000000001000: 0x01\n")
    }

    func testFormatGluedToCommandName() {
        XCTAssertEqual(run("xp/2xg 0x400000"), "0000000000400000: 0x0000000000000000 0x0000000000000000\n")
    }

    func testUnsignedAndSignedWidths() {
        XCTAssertEqual(run("xp /4ub 0x1008"), "0000000000001008: 254 220 186 152\n")
        // QEMU loads items zero-extended, so only giant words print negative.
        XCTAssertEqual(run("xp /4db 0x1008"), "0000000000001008: 254 220 186 152\n")
        XCTAssertEqual(run("xp /2uh 0x1000"), "0000000000001000:  8961 26437\n")
        XCTAssertEqual(run("xp /1uw 0x1000"), "0000000000001000: 1732584193\n")
        XCTAssertEqual(run("xp /1dg 0x1000"), "0000000000001000: -1167088121787636991\n")
        XCTAssertEqual(run("xp /1ug 0x1000"), "0000000000001000: 17279655951921914625\n")
        XCTAssertEqual(run("xp /1dw 0x400000"), "0000000000400000:          0\n")
    }

    func testOctal() {
        XCTAssertEqual(run("xp /3ob 0x1000"), "0000000000001000:  01 043 0105\n")
        XCTAssertEqual(run("xp /1oh 0x400000"), "0000000000400000:      0\n")
        XCTAssertEqual(run("xp /1ow 0x1000"), "0000000000001000: 014721221401\n")
        XCTAssertEqual(run("xp /1og 0x400000"), "0000000000400000:                      0\n")
    }

    func testCharacters() {
        XCTAssertEqual(run("xp /8cb 0x1010"), #"""
            0000000000001010: 'A' '\'' '\\' '\n' '\r' '\x00' '\x7f' ' '

            """#)
    }

    func testCharactersKeepTheLineLengthOfTheSize() {
        // As in QEMU: /2cw is 8 bytes, printed one character each, on one 16-byte line.
        XCTAssertEqual(run("xp /2cw 0x1010"), #"""
            0000000000001010: 'A' '\'' '\\' '\n' '\r' '\x00' '\x7f' ' '

            """#)
    }

    func testVirtualDumpReadsThroughTheCPU() {
        let base = FakeMonitorBackend.virtualBase + 0x1000
        XCTAssertEqual(run("x /2xw 0x\(String(base, radix: 16))"), "ffff800000001000: 0x67452301 0xefcdab89\n")
    }

    func testUnreadableMemoryEndsTheDumpLikeQEMU() {
        XCTAssertEqual(run("x /4xg 0x1000"), "0000000000001000: Cannot access memory\n")
        let end = 8 << 20
        XCTAssertEqual(run("xp /4xg 0x\(String(end - 16, radix: 16))"), """
            00000000007ffff0: 0x\(hexPair(end - 9)) 0x\(hexPair(end - 1))
            0000000000800000: Cannot access memory

            """)
    }

    private func hexPair(_ last: Int) -> String {
        (0..<8).map { String(format2(backend.ram[last - $0])) }.joined()
    }

    private func format2(_ byte: UInt8) -> String {
        let digits = String(byte, radix: 16)
        return digits.count == 1 ? "0" + digits : digits
    }

    func testAddressAtTopOfSpaceDoesNotTrap() {
        XCTAssertEqual(run("xp /2xg 0xfffffffffffffff8"), "fffffffffffffff8: Cannot access memory\n")
    }

    func testDisassemblyIsRefused() {
        XCTAssertEqual(monitor.execute("x /3i 0x1000").error, "disassembly (format 'i') is not supported; use x, d, u, o or c")
    }

    func testBadFormatCharacter() {
        XCTAssertEqual(monitor.execute("xp /4q 0x1000").error,
                       "invalid char in format: 'q' (use /{count}{x|d|u|o|c}{b|h|w|g})\nTry \"help xp\" for more information")
    }

    func testHugeCountIsRefused() {
        let error = monitor.execute("xp /2000000000xg 0").error ?? ""
        XCTAssertTrue(error.hasPrefix("memory dump of 16000000000 bytes is too large"), error)
    }

    func testZeroCountPrintsNothing() {
        XCTAssertEqual(run("xp /0xb 0x1000"), "")
    }
}
