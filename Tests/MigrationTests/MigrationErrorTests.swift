import Glibc
import KVM
import Machine
@testable import Migration
import SystemSupport
import XCTest

/// A migration's error keeps what the machine threw, down to the failed KVM call's errno.
final class MigrationErrorTests: XCTestCase {
    func testAMachineFailureIsKeptWholeAndReadsFromTheOutsideIn() {
        let kvm = KVMError.ioctl(call: "KVM_GET_DIRTY_LOG", errno: EFAULT)
        let machine = MachineError.kvm(kvm, action: "read the dirty page log of RAM slot 1")
        let error = MigrationError.machine("read the dirty page log", machine)
        XCTAssertEqual(error.cause(MachineError.self), machine)
        XCTAssertEqual(error.cause(KVMError.self), kvm)
        XCTAssertEqual(error.underlyingErrno, EFAULT)
        XCTAssertEqual("\(error)", "could not read the dirty page log: cannot read the dirty page log of RAM slot 1: KVM_GET_DIRTY_LOG failed: Bad address (errno 14)")
        XCTAssertEqual(error, .machine("read the dirty page log", machine))
        XCTAssertNotEqual(error, .machine("read the dirty page log", MachineError.noSuchCPU(1)))
    }

    func testSocketAndFileFailuresCarryTheirErrno() {
        XCTAssertEqual(MigrationError.connectFailed(uri: "tcp:127.0.0.1:1", errno: ECONNREFUSED).underlyingErrno, ECONNREFUSED)
        XCTAssertEqual(MigrationError.snapshotFile(path: "/x", action: "create", errno: EACCES).underlyingErrno, EACCES)
        XCTAssertNil(MigrationError.cancelled.underlyingErrno)
        XCTAssertEqual("\(MigrationError.stateSectionTooLarge(name: "cpu0", bytes: 1 << 30))",
                       "could not send state section 'cpu0': it is 1073741824 bytes; the stream allows \(StreamFormat.maxSectionBytes)")
    }
}
