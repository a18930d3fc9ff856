import XCTest
@testable import Monitor

final class ConsoleEscapeKeyDecoderTests: XCTestCase {
    private func decode(_ text: [UInt8]) -> [EscapeKeyDecoder.Action] {
        var decoder = EscapeKeyDecoder()
        return decoder.feed(text)
    }

    func testPlainBytesAreForwardedInOneAction() {
        XCTAssertEqual(decode(Array("ls\r".utf8)), [.forward(Array("ls\r".utf8))])
    }

    func testCommandKeysSplitTheForwardedBytes() {
        XCTAssertEqual(decode([0x61, 0x01, 0x63, 0x62]), [.forward([0x61]), .switchFocus, .forward([0x62])])
        XCTAssertEqual(decode([0x01, 0x78]), [.quit])
        XCTAssertEqual(decode([0x01, 0x68]), [.help])
        XCTAssertEqual(decode([0x01, 0x3F]), [.help])
    }

    func testCtrlATwiceSendsOneCtrlA() {
        XCTAssertEqual(decode([0x61, 0x01, 0x01, 0x62]), [.forward([0x61, 0x01, 0x62])])
    }

    func testUnknownCommandKeyIsSwallowedLikeQEMU() {
        XCTAssertEqual(decode([0x01, 0x7A, 0x61]), [.forward([0x61])])
    }

    func testCtrlAAtTheEndOfOneReadPairsWithTheNextRead() {
        var decoder = EscapeKeyDecoder()
        XCTAssertEqual(decoder.feed([0x61, 0x01]), [.forward([0x61])])
        XCTAssertTrue(decoder.awaitingCommand)
        XCTAssertEqual(decoder.feed([0x78]), [.quit])
        XCTAssertFalse(decoder.awaitingCommand)
    }

    func testHelpTextUsesQEMUWording() {
        XCTAssertTrue(EscapeKeyDecoder.helpText.contains("C-a c    switch between console and monitor\n\r"))
        XCTAssertTrue(EscapeKeyDecoder.helpText.contains("C-a C-a  sends C-a\n\r"))
    }
}
