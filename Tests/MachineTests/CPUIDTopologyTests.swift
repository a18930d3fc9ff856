import CKVM
import XCTest
@testable import Machine

/// CPUIDTopology over hand-made "supported" entries: a pure function, no KVM needed.
final class CPUIDTopologyTests: XCTestCase {
    func entry(_ function: UInt32, _ index: UInt32 = 0, eax: UInt32 = 0, ebx: UInt32 = 0, ecx: UInt32 = 0, edx: UInt32 = 0,
               flags: UInt32 = 0) -> kvm_cpuid_entry2 {
        var e = kvm_cpuid_entry2()
        e.function = function; e.index = index; e.flags = flags
        e.eax = eax; e.ebx = ebx; e.ecx = ecx; e.edx = edx
        return e
    }

    /// What a host offers: leaf 0 up to 0x1f, leaf 1 with the host's own APIC id 0x2a and count
    /// 0x10 in EBX and HTT set, leaf 4, leaves 0xB and 0x1F with the host's topology, a leaf nobody touches
    /// (7), and AMD's extended leaves.
    var supported: [kvm_cpuid_entry2] {
        [entry(0, eax: 0x1f, ebx: 0x756e_6547),
         entry(1, eax: 0x000a_0655, ebx: 0x2a10_0800, ecx: 0xfed8_3203, edx: 0x178b_fbff),
         entry(4, 0, eax: 0x1c00_4121, flags: UInt32(KVM_CPUID_FLAG_SIGNIFCANT_INDEX)),
         entry(4, 3, eax: 0x1c03_c163, flags: UInt32(KVM_CPUID_FLAG_SIGNIFCANT_INDEX)),
         entry(7, eax: 0, ebx: 0x0000_029a),
         entry(0xb, 0, eax: 1, ebx: 2, ecx: 0x100, edx: 0x2a, flags: UInt32(KVM_CPUID_FLAG_SIGNIFCANT_INDEX)),
         entry(0xb, 1, eax: 5, ebx: 32, ecx: 0x201, edx: 0x2a, flags: UInt32(KVM_CPUID_FLAG_SIGNIFCANT_INDEX)),
         entry(0x1f, 0, eax: 1, ebx: 2, ecx: 0x100, edx: 0x2a, flags: UInt32(KVM_CPUID_FLAG_SIGNIFCANT_INDEX)),
         entry(0x8000_0000, eax: 0x8000_001e),
         entry(0x8000_0001, ecx: 0x0000_0121),
         entry(0x8000_0008, eax: 0x3030, ecx: 0x0000_400f),
         entry(0x8000_001e, eax: 0x2a, ebx: 0x0000_0115, ecx: 0x0000_0303)]
    }

    func find(_ entries: [kvm_cpuid_entry2], _ function: UInt32, _ index: UInt32 = 0) -> kvm_cpuid_entry2? {
        entries.first { $0.function == function && $0.index == index }
    }

    func testEachVCPUReportsItsIndexAsItsAPICIDEverywhere() throws {
        for (index, count) in [(0, 1), (0, 4), (3, 4), (6, 8), (4, 5)] {
            let out = CPUIDTopology(vcpuIndex: index, vcpuCount: count).apply(to: supported)
            let leaf1 = try XCTUnwrap(find(out, 1))
            XCTAssertEqual(leaf1.ebx >> 24, UInt32(index), "initial APIC id, \(index) of \(count)")
            XCTAssertEqual(leaf1.ebx & 0xffff, 0x0800, "CLFLUSH size and brand index stay")
            for subleaf: UInt32 in 0...2 {
                XCTAssertEqual(try XCTUnwrap(find(out, 0xb, subleaf)).edx, UInt32(index), "x2APIC id in 0xB.\(subleaf)")
                XCTAssertEqual(try XCTUnwrap(find(out, 0x1f, subleaf)).edx, UInt32(index), "x2APIC id in 0x1F.\(subleaf)")
            }
            XCTAssertEqual(try XCTUnwrap(find(out, 0x8000_001e)).eax, UInt32(index), "AMD extended APIC id")
        }
    }

    func testOneSocketOfNCoresWithOneThreadEach() throws {
        let out = CPUIDTopology(vcpuIndex: 2, vcpuCount: 5).apply(to: supported)
        let leaf1 = try XCTUnwrap(find(out, 1))
        XCTAssertEqual((leaf1.ebx >> 16) & 0xff, 5, "logical processors in the package")
        XCTAssertNotEqual(leaf1.edx & (1 << 28), 0, "HTT: the count is valid")
        let smt = try XCTUnwrap(find(out, 0xb, 0)), core = try XCTUnwrap(find(out, 0xb, 1)), end = try XCTUnwrap(find(out, 0xb, 2))
        XCTAssertEqual([smt.eax, smt.ebx, smt.ecx], [0, 1, 0x100], "SMT level: no id bits, one thread")
        XCTAssertEqual([core.eax, core.ebx, core.ecx], [3, 5, 0x201], "core level: 3 id bits cover 5 cores")
        XCTAssertEqual([end.eax, end.ebx, end.ecx & 0xff00], [0, 0, 0], "then an invalid level ends the list")
        for e in [smt, core, end] { XCTAssertEqual(e.flags, UInt32(KVM_CPUID_FLAG_SIGNIFCANT_INDEX)) }
        XCTAssertEqual(out.filter { $0.function == 0xb }.count, 3, "the host's own subleaves are gone")
        XCTAssertEqual(try XCTUnwrap(find(out, 4, 0)).eax >> 26, 4, "leaf 4: cores per package - 1")
        XCTAssertEqual(try XCTUnwrap(find(out, 4, 3)).eax & 0x03ff_ffff, 0x1c03_c163 & 0x03ff_ffff, "cache fields stay")
        let amd = try XCTUnwrap(find(out, 0x8000_0008))
        XCTAssertEqual(amd.ecx & 0xff, 4, "NC: cores - 1")
        XCTAssertEqual((amd.ecx >> 12) & 0xf, 3, "ApicIdCoreIdSize")
        XCTAssertNotEqual(try XCTUnwrap(find(out, 0x8000_0001)).ecx & 2, 0, "CmpLegacy")
    }

    func testASingleVCPUIsOneCoreWithoutHTT() throws {
        let out = CPUIDTopology(vcpuIndex: 0, vcpuCount: 1).apply(to: supported)
        let leaf1 = try XCTUnwrap(find(out, 1))
        XCTAssertEqual(leaf1.ebx >> 16, 0, "APIC id 0, no count")
        XCTAssertEqual(leaf1.edx & (1 << 28), 0, "HTT clear")
        XCTAssertEqual(try XCTUnwrap(find(out, 0xb, 1)).ebx, 1)
        XCTAssertEqual(try XCTUnwrap(find(out, 0xb, 1)).eax, 0)
        XCTAssertEqual(try XCTUnwrap(find(out, 0x8000_0008)).ecx & 0xf0ff, 0)
        XCTAssertEqual(try XCTUnwrap(find(out, 0x8000_0001)).ecx & 2, 0)
    }

    func testEverythingElseIsLeftAsTheHostOffersIt() throws {
        let out = CPUIDTopology(vcpuIndex: 1, vcpuCount: 2).apply(to: supported)
        for function: UInt32 in [0, 7, 0x8000_0000] {
            let before = try XCTUnwrap(find(supported, function)), after = try XCTUnwrap(find(out, function))
            XCTAssertEqual([after.eax, after.ebx, after.ecx, after.edx], [before.eax, before.ebx, before.ecx, before.edx])
        }
        XCTAssertEqual(try XCTUnwrap(find(out, 1)).eax, 0x000a_0655)
        XCTAssertEqual(try XCTUnwrap(find(out, 1)).ecx, 0xfed8_3203)
    }

    func testLeavesTheHostDoesNotOfferAreNotInvented() {
        let small = [entry(0, eax: 0xa), entry(1, ebx: 0), entry(0xb, 0, ebx: 1)]
        let out = CPUIDTopology(vcpuIndex: 1, vcpuCount: 2).apply(to: small)
        XCTAssertTrue(out.allSatisfy { $0.function != 0xb }, "leaf 0xB lies beyond the maximum basic leaf 0xa")
        XCTAssertTrue(out.allSatisfy { $0.function != 0x1f && $0.function < 0x8000_0000 })
        XCTAssertEqual(out.count, 2)
    }

    func testComposesWithOtherEditsInEitherOrder() {
        // Another pure edit of the entries, such as a paravirtual leaf: adding one at 0x40000000.
        func paravirtual(_ entries: [kvm_cpuid_entry2]) -> [kvm_cpuid_entry2] {
            entries + [entry(0x4000_0000, eax: 0x4000_0001, ebx: 0x4b4d_564b)]
        }
        let topology = CPUIDTopology(vcpuIndex: 3, vcpuCount: 4)
        let a = topology.apply(to: paravirtual(supported)), b = paravirtual(topology.apply(to: supported))
        func key(_ e: kvm_cpuid_entry2) -> [UInt32] { [e.function, e.index, e.flags, e.eax, e.ebx, e.ecx, e.edx] }
        XCTAssertEqual(Set(a.map(key)), Set(b.map(key)))
        XCTAssertEqual(a.count, b.count)
    }
}
