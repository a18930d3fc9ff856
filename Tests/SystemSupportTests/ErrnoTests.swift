import Glibc
import SystemSupport
import XCTest

final class ErrnoTests: XCTestCase {
    func testAnInterruptedCallIsRetriedUntilItFinishes() {
        var calls = 0
        let result = Errno.retryingInterrupted { () -> Int32 in
            calls += 1
            if calls < 3 { errno = EINTR; return -1 }
            return 7
        }
        XCTAssertEqual(result, 7)
        XCTAssertEqual(calls, 3)
    }

    func testAnyOtherFailureIsReturnedAtOnceWithItsErrno() {
        var calls = 0
        let result = Errno.retryingInterrupted { () -> Int in
            calls += 1
            errno = EBADF
            return -1
        }
        XCTAssertEqual(result, -1)
        XCTAssertEqual(errno, EBADF)
        XCTAssertEqual(calls, 1)
        XCTAssertEqual(Errno.retryingInterrupted { read(-1, nil, 0) }, -1)
        XCTAssertEqual(errno, EBADF)
    }

    func testASystemCallErrorNamesTheCallAndTheErrno() {
        let error = SystemCallError(call: "pthread_create(vcpu3)", errno: EAGAIN)
        XCTAssertEqual("\(error)", "pthread_create(vcpu3) failed: Resource temporarily unavailable (errno 11)")
        XCTAssertEqual(error.underlyingErrno, EAGAIN)
    }
}
