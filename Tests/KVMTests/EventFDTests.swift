import CKVM
import Glibc
@testable import KVM
import XCTest

/// ioeventfd and irqfd on a real VM: a guest write to a registered port or MMIO address signals
/// the eventfd inside KVM (the vCPU never exits for it), and signalling an irqfd raises the
/// interrupt line in the in-kernel PIC.
final class EventFDTests: XCTestCase {
    private static let notifyPort: UInt16 = 0x510
    private static let notifyAddress: UInt16 = 0xa000   // above the 32 KiB of RAM: MMIO

    private func makeGuest(_ code: [UInt8]) throws -> (VirtualMachine, VCPU) {
        let memory = try GuestMemory(layout: [(0, 0x8000)])
        let vm = try KVMSystem().createVM()
        try vm.setMemoryRegion(memory.regions[0], logDirtyPages: false)
        try memory.write(0x1000, bytes: code + RealModeGuest.hlt)
        // The VM must outlive this function, and so must the memory it maps.
        retained.append(memory)
        return (vm, try vm.createVCPU(id: 0))
    }
    private var retained: [GuestMemory] = []

    func testCountsAndClears() throws {
        let event = try EventFD()
        XCTAssertNil(try event.consume())
        try event.signal()
        try event.signal(2)
        XCTAssertEqual(try event.consume(), 3)
        XCTAssertNil(try event.consume())
    }

    func testAGuestPortWriteSignalsTheEventfdWithoutAnExit() throws {
        let (vm, vcpu) = try makeGuest(RealModeGuest.outByte(0x5a, to: Self.notifyPort))
        let event = try EventFD()
        try vm.registerIOEvent(event, at: .port(Self.notifyPort), length: 1)
        let exits = RecordingExits()
        try RealModeGuest.runToHalt(vcpu, at: 0x1000, handler: exits)
        XCTAssertEqual(exits.portWrites.count, 0, "the write completed inside KVM")
        XCTAssertEqual(try event.consume(), 1)

        try vm.unregisterIOEvent(event, at: .port(Self.notifyPort), length: 1)
        try RealModeGuest.runToHalt(vcpu, at: 0x1000, handler: exits)
        XCTAssertEqual(exits.portWrites.map(\.port), [Self.notifyPort], "unregistered: the write exits again")
        XCTAssertEqual(exits.portWrites.map(\.value), [0x5a])
        XCTAssertNil(try event.consume())
    }

    func testADataMatchSignalsOnlyForItsValue() throws {
        let (vm, vcpu) = try makeGuest(RealModeGuest.outByte(0x5a, to: Self.notifyPort) + RealModeGuest.outByte(0x77, to: Self.notifyPort))
        let event = try EventFD()
        try vm.registerIOEvent(event, at: .port(Self.notifyPort), length: 1, matching: 0x77)
        let exits = RecordingExits()
        try RealModeGuest.runToHalt(vcpu, at: 0x1000, handler: exits)
        XCTAssertEqual(exits.portWrites.map(\.value), [0x5a], "only the other value reached user space")
        XCTAssertEqual(try event.consume(), 1)
    }

    func testAGuestMMIOWriteSignalsTheEventfdWithoutAnExit() throws {
        let (vm, vcpu) = try makeGuest(RealModeGuest.storeByte(0x42, at: Self.notifyAddress))
        let exits = RecordingExits()
        try RealModeGuest.runToHalt(vcpu, at: 0x1000, handler: exits)
        XCTAssertEqual(exits.mmioWrites.map(\.address), [UInt64(Self.notifyAddress)], "without ioeventfd the store is an MMIO exit")

        let event = try EventFD()
        try vm.registerIOEvent(event, at: .mmio(UInt64(Self.notifyAddress)), length: 1)
        try RealModeGuest.runToHalt(vcpu, at: 0x1000, handler: exits)
        XCTAssertEqual(exits.mmioWrites.count, 1, "the second store completed inside KVM")
        XCTAssertEqual(try event.consume(), 1)
    }

    func testAnIrqfdSignalRaisesTheLineInThePIC() throws {
        let vm = try KVMSystem().createVM()
        try vm.setUpX86Platform()
        let event = try EventFD()
        try vm.registerIRQFD(event, gsi: 4)
        XCTAssertEqual(try masterPICRequests(vm) & (1 << 4), 0)
        try event.signal()
        // KVM injects from a work queue: wait for it, without asserting how long it takes.
        XCTAssertTrue(try waitUntil { try self.masterPICRequests(vm) & (1 << 4) != 0 }, "IRQ 4 never reached the PIC's request register")

        try vm.unregisterIRQFD(event, gsi: 4)
        try vm.registerIRQFD(event, gsi: 3)
        try event.signal()
        XCTAssertTrue(try waitUntil { try self.masterPICRequests(vm) & (1 << 3) != 0 }, "the same eventfd now drives IRQ 3")
    }

    func testRegistrationErrorsNameTheCall() throws {
        let vm = try KVMSystem().createVM()
        let event = try EventFD()
        XCTAssertThrowsError(try vm.registerIOEvent(event, at: .port(Self.notifyPort), length: 3)) { error in
            XCTAssertEqual(error as? KVMError, .ioctl(call: "KVM_IOEVENTFD", errno: EINVAL))
        }
        XCTAssertThrowsError(try vm.unregisterIOEvent(event, at: .port(Self.notifyPort), length: 1)) { error in
            XCTAssertTrue("\(error)".hasPrefix("KVM_IOEVENTFD (deassign) failed: "), "\(error)")
        }
    }

    private func masterPICRequests(_ vm: VirtualMachine) throws -> UInt8 {
        try vm.irqchip(UInt32(KVM_IRQCHIP_PIC_MASTER)).chip.pic.irr
    }

    /// Polls `condition` every millisecond for up to 10 s.
    private func waitUntil(_ condition: () throws -> Bool) throws -> Bool {
        for _ in 0..<10_000 {
            if try condition() { return true }
            usleep(1000)
        }
        return try condition()
    }
}
