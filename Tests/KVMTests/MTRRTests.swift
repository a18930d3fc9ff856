import CKVM
@testable import KVM
import XCTest

final class MTRRTests: XCTestCase {
    private func leaf1(edx: UInt32) -> [kvm_cpuid_entry2] {
        var e = kvm_cpuid_entry2()
        e.function = 1
        e.edx = edx
        return [e]
    }
    private let fixed: [UInt32] = [0x250, 0x258, 0x259, 0x268, 0x269, 0x26a, 0x26b, 0x26c, 0x26d, 0x26e, 0x26f]

    func testTheStateSetIsTheDefaultTypeTheCountedVariablePairsAndTheFixedRanges() {
        // KVM's MTRRcap: VCNT 8, FIX, WC.
        XCTAssertEqual(MTRR.stateMSRs(capability: 0x508), [0x2ff] + Array(0x200...0x20f) + fixed)
        XCTAssertEqual(MTRR.stateMSRs(capability: 0x402), [0x2ff, 0x200, 0x201, 0x202, 0x203], "no FIX: no fixed ranges")
        XCTAssertEqual(MTRR.stateMSRs(capability: 0x100), [0x2ff] + fixed, "no variable ranges")
        // A VCNT past what fits below MTRRfix64K_00000 (0x250) stops there.
        XCTAssertEqual(MTRR.stateMSRs(capability: 0xff).last, 0x24f)
        XCTAssertEqual(MTRR.enabledWriteBack, 0x806, "E (bit 11) and type 6, as Firecracker sets it")
    }

    func testMTRRsBelongToAStateOnlyWhereCPUIDAdvertisesThem() {
        let msrs = StateMSRs(listed: [0x10, 0x277], mtrrs: MTRR.stateMSRs(capability: 0x508))
        XCTAssertEqual(msrs.indices(cpuid: leaf1(edx: 1 << 12)), [0x10, 0x277] + MTRR.stateMSRs(capability: 0x508))
        XCTAssertEqual(msrs.indices(cpuid: leaf1(edx: ~(1 << 12))), [0x10, 0x277])
        XCTAssertEqual(msrs.indices(cpuid: []), [0x10, 0x277])
        XCTAssertEqual(msrs.withoutMTRRs.indices(cpuid: leaf1(edx: 1 << 12)), [0x10, 0x277])
        // A KVM that one day lists an MTRR itself gets it once.
        let listing = StateMSRs(listed: [0x10, 0x2ff], mtrrs: [0x2ff, 0x200])
        XCTAssertEqual(listing.indices(cpuid: leaf1(edx: 1 << 12)), [0x10, 0x2ff, 0x200])
    }

    func testAReceivedStateMayCarryMTRRsOnlyWithCPUIDsMTRRBit() throws {
        let allowed = StateMSRs(listed: [0x10], mtrrs: MTRR.stateMSRs(capability: 0x508))
        var state = VCPUState()
        state.xsave = [UInt8](repeating: 0, count: MemoryLayout<kvm_xsave>.size)
        state.msrs = [(0x10, 1), (0x2ff, 0xc06), (0x20f, 0x800), (0x26f, 0x0505_0505_0505_0505)]
        state.cpuid = leaf1(edx: 1 << 12)
        XCTAssertNoThrow(try state.checkFits(xsaveSize: 0, msrs: allowed))
        XCTAssertThrowsError(try state.checkFits(xsaveSize: 0, msrs: allowed.withoutMTRRs)) { error in
            XCTAssertEqual("\(error)", "bad MSR state: MSR 0x2ff is not one this host's KVM saves and restores (KVM_GET_MSR_INDEX_LIST, and the MTRRs where CPUID has MTRR)")
        }
        state.cpuid = leaf1(edx: 0)
        XCTAssertThrowsError(try state.checkFits(xsaveSize: 0, msrs: allowed), "MTRRs without the CPUID bit")
        state.cpuid = leaf1(edx: 1 << 12)
        state.msrs.append((0x210, 0))
        XCTAssertThrowsError(try state.checkFits(xsaveSize: 0, msrs: allowed), "a ninth variable pair, which MTRRcap does not count") { error in
            XCTAssertTrue("\(error)".contains("MSR 0x210 is not one"), "\(error)")
        }
    }

    /// The rule's premise, on this host's KVM: every MTRR that MTRRcap counts reads and writes.
    func testKVMEmulatesEveryMTRRThatMTRRcapCounts() throws {
        let vcpu = try KVMSystem().createVM().createVCPU(id: 0)
        let capability = try XCTUnwrap(vcpu.getMSRs([MTRR.capabilityMSR]).first?.value, "KVM answers MTRRcap")
        XCTAssertGreaterThan(capability & 0xff, 0, "KVM offers variable ranges")
        let set = MTRR.stateMSRs(capability: capability)
        // Valid values of each kind: UC by default with E and FE on, WB base, a valid mask, WP bytes.
        let values: [(index: UInt32, value: UInt64)] = set.map { index in
            switch index {
            case MTRR.defaultTypeMSR: return (index, 0xc00)
            case 0x200..<0x250: return (index, index % 2 == 0 ? 0x0100_0006 : 0xf_ff00_0800)
            default: return (index, 0x0505_0505_0505_0505)
            }
        }
        try vcpu.setMSRs(values)
        let back = try vcpu.getMSRs(set)
        XCTAssertEqual(back.map(\.index), set)
        XCTAssertEqual(back.map(\.value), values.map(\.value))
    }
}
