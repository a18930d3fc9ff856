import Glibc
import SystemSupport
import XCTest

final class ErrorCauseTests: XCTestCase {
    private struct Outer: WrappingError, CustomStringConvertible {
        var underlying: (any Error)?
        var description: String { "could not save: \(underlying.map { "\($0)" } ?? "?")" }
    }

    private struct Plain: Error, Equatable, CustomStringConvertible {
        var text: String
        var description: String { text }
    }

    func testTheChainLeadsFromTheOutermostErrorToTheFailedCall() {
        let call = SystemCallError(call: "pipe", errno: EMFILE)
        let error: Error = Outer(underlying: Outer(underlying: call))
        XCTAssertEqual(error.causeChain.count, 3)
        XCTAssertEqual(error.cause(SystemCallError.self), call)
        XCTAssertEqual(error.underlyingErrno, EMFILE)
        XCTAssertEqual("\(error)", "could not save: could not save: pipe failed: Too many open files (errno 24)")
        XCTAssertNil(Plain(text: "x").underlyingErrno)
        XCTAssertNil(Outer(underlying: nil).cause(SystemCallError.self))
    }

    func testAKeptCauseStaysTypedAndComparesByTypeAndWords() {
        let cause = ErrorCause(SystemCallError(call: "pipe", errno: EMFILE))
        XCTAssertEqual(cause.error as? SystemCallError, SystemCallError(call: "pipe", errno: EMFILE))
        XCTAssertEqual(cause.underlyingErrno, EMFILE)
        XCTAssertEqual(cause, ErrorCause(SystemCallError(call: "pipe", errno: EMFILE)))
        XCTAssertNotEqual(cause, ErrorCause(SystemCallError(call: "pipe", errno: ENFILE)))
        // Same words, different type: not the same cause.
        XCTAssertNotEqual(ErrorCause(Plain(text: "\(cause)")), cause)
        // Wrapping a wrapper adds no empty link.
        XCTAssertEqual(ErrorCause(cause).causeChain.count, 2)
    }

    func testHostFileFailuresKeepTheirErrno() {
        XCTAssertThrowsError(try HostFile.readAll("/nonexistent/guest.img", limit: 1 << 20)) { error in
            XCTAssertEqual(error as? HostFile.ReadError, .cannotOpen(errno: ENOENT))
            XCTAssertEqual(error.underlyingErrno, ENOENT)
            XCTAssertEqual("\(error)", "No such file or directory")
        }
        XCTAssertEqual("\(HostFile.ReadError.tooLarge(size: 3 << 20, limit: 2 << 20))", "3145728 bytes is larger than the 2 MiB limit")
        XCTAssertNil(HostFile.ReadError.tooLarge(size: 1, limit: 0).underlyingErrno)
    }
}
