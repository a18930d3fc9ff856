import CKVM
import Glibc
@testable import KVM
import XCTest

final class KVMSystemTests: XCTestCase {
    func testOpensKVMAndReportsCapabilities() throws {
        XCTAssertEqual(access("/dev/kvm", R_OK | W_OK), 0, "/dev/kvm must be usable on every machine of this project")
        let kvm = try KVMSystem()
        XCTAssertGreaterThan(kvm.checkExtension(Int32(KVM_CAP_IRQCHIP)), 0)
        XCTAssertGreaterThan(try kvm.supportedCPUID().count, 0)
        XCTAssertGreaterThan(try kvm.msrIndexList().count, 0)
    }

    func testAHostLackingACapabilityIsToldWhichOne() {
        XCTAssertNoThrow(try KVMSystem.requireCapabilities { _ in 1 })
        let immediateExit = Int32(KVM_CAP_IMMEDIATE_EXIT)
        XCTAssertThrowsError(try KVMSystem.requireCapabilities { $0 == immediateExit ? 0 : 1 }) { error in
            XCTAssertEqual("\(error)", "this host's KVM lacks KVM_CAP_IMMEDIATE_EXIT")
        }
    }

    func testARefusedMSRIsAShortTransferNamingIt() throws {
        let vcpu = try KVMSystem().createVM().createVCPU(id: 0)
        // MSR 0xdead0001 does not exist: KVM sets the first entry and stops at the second.
        XCTAssertThrowsError(try vcpu.setMSRs([(index: 0x10, value: 0), (index: 0xdead_0001, value: 0)])) { error in
            XCTAssertEqual("\(error)", "KVM_SET_MSRS (stopped at MSR 0xdead0001) handled 1 of 2 entries")
        }
    }

    func testMissingDeviceNamesThePath() {
        XCTAssertThrowsError(try KVMSystem(path: "/nonexistent/kvm")) { error in
            XCTAssertEqual("\(error)", "cannot open /nonexistent/kvm: No such file or directory (is the kvm module loaded?)")
        }
    }

    func testFailedIoctlNamesTheCall() throws {
        let vm = try KVMSystem().createVM()
        try vm.setUpX86Platform()
        // A second irqchip is refused by KVM; the error must say which call failed and why.
        XCTAssertThrowsError(try vm.setUpX86Platform()) { error in
            XCTAssertTrue("\(error)".contains(" failed: "), "\(error)")
            XCTAssertTrue("\(error)".hasPrefix("KVM_"), "\(error)")
        }
    }

    func testGuestMemoryBoundsChecks() throws {
        let mem = try GuestMemory(layout: [(0, 1 << 20), (4 << 30, 1 << 20)])
        try mem.write(0x1000, bytes: [1, 2, 3])
        XCTAssertEqual(try mem.read(0x1000, count: 3), [1, 2, 3])
        try mem.write((4 << 30) + 8, bytes: [9])
        XCTAssertEqual(try mem.read((4 << 30) + 8, count: 1), [9])
        XCTAssertThrowsError(try mem.read((1 << 20) - 2, count: 4))
        XCTAssertThrowsError(try mem.read(2 << 20, count: 1))
        XCTAssertThrowsError(try mem.read(UInt64.max - 1, count: 4))
        XCTAssertThrowsError(try mem.read(0, count: -1))
        try mem.discardAll()
        XCTAssertEqual(try mem.read(0x1000, count: 3), [0, 0, 0])
    }

    func testPlainDataRoundTrip() {
        var regs = kvm_regs()
        regs.rip = 0x1234; regs.r15 = 99
        let bytes = PlainData.bytes(of: regs)
        let back = PlainData.value(kvm_regs.self, from: bytes, zero: kvm_regs())
        XCTAssertEqual(back?.rip, 0x1234)
        XCTAssertEqual(back?.r15, 99)
        XCTAssertNil(PlainData.value(kvm_regs.self, from: Array(bytes.dropLast()), zero: kvm_regs()))
    }
}
