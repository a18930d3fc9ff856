import Glibc
import KVM
@testable import Machine
import SystemSupport
import XCTest

/// A failed KVM call stays inspectable through the machine's error: the call, its errno, what
/// the machine was doing and on which vCPU, in words that say all of it.
final class MachineErrorTests: XCTestCase {
    func testAFailedIoctlKeepsItsErrnoThroughTheMachine() throws {
        requireKVM()
        let machine = try Machine(configuration: MachineConfiguration(
            memorySize: 16 << 20, boot: .kernel(path: GuestImages.path("hello.elf"), commandLine: ""), debugExit: .init()))
        machine.log = { _ in }
        defer { machine.shutdownThreads() }
        // Without dirty logging KVM has no bitmap for the slot and refuses with ENOENT.
        XCTAssertThrowsError(try machine.collectDirtyPages()) { error in
            guard case .kvm(let cause, let action, let vcpu)? = error as? MachineError else { return XCTFail("\(error)") }
            XCTAssertEqual(cause, .ioctl(call: "KVM_GET_DIRTY_LOG", errno: ENOENT))
            XCTAssertEqual(action, "read the dirty page log of RAM slot 0")
            XCTAssertNil(vcpu)
            XCTAssertEqual(error.underlyingErrno, ENOENT)
            XCTAssertEqual(error.cause(KVMError.self), cause)
            XCTAssertEqual("\(error)", "cannot read the dirty page log of RAM slot 0: KVM_GET_DIRTY_LOG failed: No such file or directory (errno 2)")
        }
    }

    func testTheWordsNameTheVCPUAndAdviseWhereTheErrnoSaysMore() {
        let restore = MachineError.kvm(.ioctl(call: "KVM_SET_XSAVE", errno: EINVAL), action: "restore the vCPU state", vcpu: 2)
        XCTAssertEqual("\(restore)", "cannot restore the vCPU state (vCPU 2): KVM_SET_XSAVE failed: Invalid argument (errno 22)")
        XCTAssertEqual(restore.underlyingErrno, EINVAL)
        let memory = MachineError.kvm(.ioctl(call: "KVM_CREATE_VCPU", errno: ENOMEM), action: "create the vCPU", vcpu: 0)
        XCTAssertEqual("\(memory)", "cannot create the vCPU (vCPU 0): KVM_CREATE_VCPU failed: Cannot allocate memory (errno 12); the host is out of memory (lower -m or free memory)")
    }

    func testAThreadThatCannotStartIsAHostErrorNotAnIoctl() throws {
        XCTAssertThrowsError(try MachineError.during("start the vCPU thread", vcpu: 1) {
            throw SystemCallError(call: "pthread_create(vcpu1)", errno: EAGAIN)
        }) { error in
            XCTAssertEqual(error as? MachineError,
                           .host(SystemCallError(call: "pthread_create(vcpu1)", errno: EAGAIN), action: "start the vCPU thread"))
            XCTAssertEqual(error.underlyingErrno, EAGAIN)
            XCTAssertEqual("\(error)", "cannot start the vCPU thread: pthread_create(vcpu1) failed: Resource temporarily unavailable (errno 11)")
        }
        // Anything that is not a failed call passes through as it was.
        XCTAssertThrowsError(try MachineError.during("read the registers", vcpu: 0) { throw MachineError.noSuchCPU(3) }) {
            XCTAssertEqual($0 as? MachineError, .noSuchCPU(3))
        }
    }
}
