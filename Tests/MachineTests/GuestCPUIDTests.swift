import CKVM
import KVM
@testable import Machine
import XCTest

final class GuestCPUIDTests: XCTestCase {
    private func e(_ function: UInt32, _ eax: UInt32 = 0, _ ebx: UInt32 = 0, _ ecx: UInt32 = 0, _ edx: UInt32 = 0) -> kvm_cpuid_entry2 {
        GuestCPUID.makeEntry(function: function, eax: eax, ebx: ebx, ecx: ecx, edx: edx)
    }

    /// What an Intel host's KVM_GET_SUPPORTED_CPUID looks like, in the parts that matter here.
    private var intel: [kvm_cpuid_entry2] {
        [e(0, 0x16, 0x756e_6547, 0x6c65_746e, 0x4965_6e69), e(1, 0x906ea, 0, 0x7ffa_3203, 0x178b_fbff),
         e(0x15, 2, 250, 24_000_000), e(0x16, 3000, 4000, 100),
         e(0x4000_0000, 0x4000_0001, 0x4b4d_564b, 0x564b_4d56, 0x4d), e(0x4000_0001, 0x0100_7efb)]
    }
    private var amd: [kvm_cpuid_entry2] {
        [e(0, 0x10, 0x6874_7541, 0x444d_4163, 0x6974_6e65), e(1, 0xa20f10, 0, 0x7ef8_3203, 0x178b_fbff)]
    }

    private func signature(_ entry: kvm_cpuid_entry2?) -> String {
        guard let entry else { return "" }
        let words = [entry.ebx, entry.ecx, entry.edx]
        return String(decoding: words.flatMap { w in (0..<4).map { UInt8(truncatingIfNeeded: w >> (8 * $0)) } }.filter { $0 != 0 }, as: UTF8.self)
    }

    func testHypervisorBitAndTSCDeadline() {
        let built = GuestCPUID.build(supported: amd, tscKHz: 0, tscDeadlineTimer: true)
        let leaf1 = GuestCPUID.entry(built, function: 1)!
        XCTAssertNotEqual(leaf1.ecx & (1 << 31), 0)
        XCTAssertNotEqual(leaf1.ecx & (1 << 24), 0)
        XCTAssertEqual(leaf1.ecx & ~(UInt32(1) << 31 | 1 << 24), 0x7ef8_3203 & ~(UInt32(1) << 24), "other bits untouched")
        let noDeadline = GuestCPUID.build(supported: amd, tscKHz: 0, tscDeadlineTimer: false)
        XCTAssertEqual(GuestCPUID.entry(noDeadline, function: 1)!.ecx & (1 << 24), 0)
    }

    /// MTRR (leaf 1 EDX bit 12) passes through as KVM offers it: Linux keeps MTRRs and PAT on.
    func testMTRRIsAdvertisedExactlyWhereKVMOffersIt() {
        for supported in [intel, amd] {
            let built = GuestCPUID.build(supported: supported, tscKHz: 2_000_000, tscDeadlineTimer: true, hostBrand: [])
            XCTAssertNotEqual(GuestCPUID.entry(built, function: 1)!.edx & (1 << 12), 0)
            XCTAssertEqual(GuestCPUID.entry(built, function: 1)!.edx, GuestCPUID.entry(supported, function: 1)!.edx, "leaf 1 EDX as KVM's")
        }
        let withoutMTRR = amd.map { e -> kvm_cpuid_entry2 in var c = e; if c.function == 1 { c.edx &= ~(1 << 12) }; return c }
        XCTAssertEqual(GuestCPUID.entry(GuestCPUID.build(supported: withoutMTRR, tscKHz: 0, tscDeadlineTimer: false), function: 1)!.edx & (1 << 12), 0)
    }

    func testKVMLeavesKeepKVMsFeaturesAndAreAddedWhereMissing() {
        let fromIntel = GuestCPUID.withKVMLeaves(intel)
        XCTAssertEqual(signature(GuestCPUID.entry(fromIntel, function: 0x4000_0000)), "KVMKVMKVM")
        XCTAssertEqual(GuestCPUID.entry(fromIntel, function: 0x4000_0001)?.eax, 0x0100_7efb, "features as KVM reports them")
        XCTAssertEqual(fromIntel.count, intel.count)

        let fromAMD = GuestCPUID.withKVMLeaves(amd)
        XCTAssertEqual(signature(GuestCPUID.entry(fromAMD, function: 0x4000_0000)), "KVMKVMKVM")
        XCTAssertEqual(GuestCPUID.entry(fromAMD, function: 0x4000_0000)?.eax, 0x4000_0001)
        XCTAssertEqual(GuestCPUID.entry(fromAMD, function: 0x4000_0001)?.eax, 0)
    }

    func testTSCFrequencyLeaves() {
        let built = GuestCPUID.build(supported: intel, tscKHz: 2_000_000, tscDeadlineTimer: true)
        let timing = GuestCPUID.entry(built, function: 0x4000_0010)!
        XCTAssertEqual(timing.eax, 2_000_000)
        XCTAssertEqual(timing.ebx, 1_000_000, "APIC bus kHz")
        XCTAssertEqual(GuestCPUID.entry(built, function: 0x4000_0000)?.eax, 0x4000_0010, "hypervisor range includes the timing leaf")
        let leaf15 = GuestCPUID.entry(built, function: 0x15)!
        // Linux: tsc_khz = (ecx / 1000) * ebx / eax; lapic_timer_period = ecx / HZ (the 1 GHz APIC clock).
        XCTAssertEqual(UInt64(leaf15.ecx / 1000) * UInt64(leaf15.ebx) / UInt64(leaf15.eax), 2_000_000)
        XCTAssertEqual(leaf15.ecx, 1_000_000_000)
        XCTAssertLessThanOrEqual(UInt64(leaf15.ecx / 1000) * UInt64(leaf15.ebx), UInt64(UInt32.max))
        XCTAssertEqual(GuestCPUID.entry(built, function: 0x16)?.eax, 2000)

        // A frequency Linux could not compute exactly in 32 bits: leaf 0x15 says nothing rather than the host's crystal.
        let odd = GuestCPUID.withTSCFrequency(intel, khz: 2_995_213)
        XCTAssertEqual(GuestCPUID.entry(odd, function: 0x15)?.ebx, 0)
        XCTAssertEqual(GuestCPUID.entry(odd, function: 0x4000_0010)?.eax, 2_995_213)

        // AMD: no Intel-only leaves appear.
        let onAMD = GuestCPUID.build(supported: amd, tscKHz: 2_000_000, tscDeadlineTimer: false)
        XCTAssertNil(GuestCPUID.entry(onAMD, function: 0x15))
        XCTAssertEqual(GuestCPUID.entry(onAMD, function: 0x4000_0010)?.eax, 2_000_000)
    }

    func testStepsCompose() {
        let once = GuestCPUID.build(supported: intel, tscKHz: 3_000_000, tscDeadlineTimer: true)
        let twice = GuestCPUID.build(supported: once, tscKHz: 3_000_000, tscDeadlineTimer: true)
        XCTAssertEqual(once.count, twice.count)
        for (a, b) in zip(once, twice) {
            XCTAssertEqual([a.function, a.index, a.eax, a.ebx, a.ecx, a.edx], [b.function, b.index, b.eax, b.ebx, b.ecx, b.edx])
        }
    }

    private func words(_ text: String) -> [KVMSystem.CPUIDWords] {
        var bytes = Array(text.utf8.prefix(47)) + [UInt8](repeating: 0, count: 48)
        bytes = Array(bytes.prefix(48))
        let all = stride(from: 0, to: 48, by: 4).map { i in (0..<4).reduce(UInt32(0)) { $0 | UInt32(bytes[i + $1]) << (8 * $1) } }
        return (0..<3).map { (all[4 * $0], all[4 * $0 + 1], all[4 * $0 + 2], all[4 * $0 + 3]) }
    }

    private func brand(_ entries: [kvm_cpuid_entry2]) -> String {
        let leaves = (UInt32(0x8000_0002)...0x8000_0004).compactMap { GuestCPUID.entry(entries, function: $0) }
        let bytes = leaves.flatMap { e in [e.eax, e.ebx, e.ecx, e.edx].flatMap { w in (0..<4).map { UInt8(truncatingIfNeeded: w >> (8 * $0)) } } }
        return String(decoding: bytes.prefix { $0 != 0 }, as: UTF8.self)
    }

    func testTheHostsProcessorNameFillsTheNameLeavesKVMLeftEmpty() {
        let host = words("AMD QEMU TCG CPU version 2.5+")
        // KVM lists the leaves, zeroed (its default case), up to its highest extended leaf.
        let zeroed = amd + [e(0x8000_0000, 0x8000_0021), e(0x8000_0002), e(0x8000_0003), e(0x8000_0004)]
        let named = GuestCPUID.build(supported: zeroed, tscKHz: 0, tscDeadlineTimer: false, hostBrand: host)
        XCTAssertEqual(brand(named), "AMD QEMU TCG CPU version 2.5+")
        XCTAssertEqual(named.count, GuestCPUID.build(supported: zeroed, tscKHz: 0, tscDeadlineTimer: false).count,
                       "the leaves are filled, not added twice")
        // Absent leaves are added as well.
        let absent = GuestCPUID.withBrand(amd + [e(0x8000_0000, 0x8000_0008)], host: host)
        XCTAssertEqual(brand(absent), "AMD QEMU TCG CPU version 2.5+")
        // Not where the guest's highest extended leaf stops short of them, nor over a name KVM gave.
        XCTAssertEqual(brand(GuestCPUID.withBrand(amd + [e(0x8000_0000, 0x8000_0001)], host: host)), "")
        let given = amd + [e(0x8000_0000, 0x8000_0008)] + zip(UInt32(0x8000_0002)...0x8000_0004, words("Given by KVM")).map { f, w in e(f, w.eax, w.ebx, w.ecx, w.edx) }
        XCTAssertEqual(brand(GuestCPUID.withBrand(given, host: host)), "Given by KVM")
        // A host without the leaves changes nothing.
        XCTAssertEqual(brand(GuestCPUID.withBrand(zeroed, host: [])), "")
    }

    /// On this host's KVM: each vCPU gets what build() makes of KVM's own list, then its own
    /// topology (APIC ID in leaf 1), so the two steps compose per vCPU.
    func testMachineVCPUsSeeKVMSignatureAndTheirOwnAPICID() throws {
        requireKVM()
        let m = try Machine(configuration: MachineConfiguration(memorySize: 64 << 20, boot: .kernel(path: GuestImages.path("hello.elf"), commandLine: ""),
                                                                vcpuCount: 2))
        defer { m.shutdownThreads() }
        for (index, thread) in m.vcpus.enumerated() {
            let (cpuid, khz) = try thread.perform { vcpu in (try vcpu.getCPUID(), try vcpu.tscKHz()) }
            XCTAssertEqual(signature(GuestCPUID.entry(cpuid, function: 0x4000_0000)), "KVMKVMKVM")
            XCTAssertNotEqual((GuestCPUID.entry(cpuid, function: 1)?.ecx ?? 0) & (1 << 31), 0)
            XCTAssertEqual((GuestCPUID.entry(cpuid, function: 1)?.ebx ?? 0) >> 24, UInt32(index), "vCPU \(index)'s APIC ID")
            XCTAssertGreaterThan(khz, 0)
            XCTAssertEqual(GuestCPUID.entry(cpuid, function: 0x4000_0010)?.eax, khz)
            let hostBrand = KVMSystem.hostBrandLeaves()
            XCTAssertEqual(hostBrand.count, 3, "this host's CPU names itself in CPUID")
            XCTAssertFalse(brand(cpuid).isEmpty, "vCPU \(index) has no processor name")
            XCTAssertEqual(brand(cpuid), brand(GuestCPUID.withBrand([e(0x8000_0000, 0x8000_0004)], host: hostBrand)),
                           "vCPU \(index) is named as the host's CPU")
        }
    }
}
