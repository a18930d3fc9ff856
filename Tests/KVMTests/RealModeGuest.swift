import CKVM
@testable import KVM
import XCTest

/// Runs a few bytes of real-mode code on a bare vCPU (flat segments at 0) until `hlt`, recording
/// the port and MMIO accesses KVM hands to user space.
final class RecordingExits: VCPUExitHandler {
    var portWrites: [(port: UInt16, value: UInt32)] = []
    var mmioWrites: [(address: UInt64, value: UInt64)] = []

    func portRead(port: UInt16, size: Int) -> UInt32 { 0 }
    func portWrite(port: UInt16, size: Int, value: UInt32) { portWrites.append((port, value)) }
    func mmioRead(address: UInt64, size: Int) -> UInt64 { 0 }
    func mmioWrite(address: UInt64, size: Int, value: UInt64) { mmioWrites.append((address, value)) }
}

enum RealModeGuest {
    static let hlt: [UInt8] = [0xF4]

    /// `mov al, value; mov dx, port; out dx, al`
    static func outByte(_ value: UInt8, to port: UInt16) -> [UInt8] {
        [0xB0, value, 0xBA, UInt8(port & 0xff), UInt8(port >> 8), 0xEE]
    }

    /// `mov byte [address], value` (DS base 0)
    static func storeByte(_ value: UInt8, at address: UInt16) -> [UInt8] {
        [0xC6, 0x06, UInt8(address & 0xff), UInt8(address >> 8), value]
    }

    static func runToHalt(_ vcpu: VCPU, at entry: UInt64, handler: VCPUExitHandler = RecordingExits(),
                          file: StaticString = #filePath, line: UInt = #line) throws {
        var sregs = try vcpu.getSregs()
        var code = sregs.cs
        code.base = 0; code.selector = 0
        sregs.cs = code
        var data = sregs.ds
        data.base = 0; data.selector = 0
        sregs.ds = data
        try vcpu.setSregs(sregs)
        var regs = kvm_regs()
        regs.rip = entry
        regs.rflags = 0x2
        try vcpu.setRegs(regs)
        XCTAssertEqual(try vcpu.run(handler: handler), .halted, file: file, line: line)
    }
}
