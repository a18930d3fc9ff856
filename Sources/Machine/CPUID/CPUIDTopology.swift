import CKVM

/// Where a vCPU sits in the machine, as CPUID tells the guest: one socket of `vcpuCount` cores
/// with one thread each, and initial APIC id = x2APIC id = the vCPU's index, which is what
/// QEMU gives `-smp N` and what a MADT built from the vCPU count lists.
///
/// A pure function over KVM_GET_SUPPORTED_CPUID's entries: it touches only the topology
/// fields (leaf 1 EBX[31:16] and HTT, leaf 4 EAX[31:26], leaves 0xB and 0x1F, AMD's
/// 0x80000001 CmpLegacy, 0x80000008 ECX and 0x8000001E), so other edits of the entries
/// (paravirtual leaves, TSC frequency) compose with it in either order. Leaves the host's KVM
/// does not offer are not invented.
public struct CPUIDTopology: Equatable, Sendable {
    public var vcpuIndex: Int
    public var vcpuCount: Int

    public init(vcpuIndex: Int, vcpuCount: Int) {
        self.vcpuIndex = vcpuIndex
        self.vcpuCount = vcpuCount
    }

    public var apicID: UInt32 { UInt32(vcpuIndex) }

    /// Bits of the x2APIC id that number the cores of the package: ceil(log2(vcpuCount)).
    public var coreIDBits: UInt32 {
        var bits: UInt32 = 0
        while (1 << bits) < vcpuCount { bits += 1 }
        return bits
    }

    static let htt: UInt32 = 1 << 28                    // leaf 1 EDX: EBX[23:16] is valid
    static let cmpLegacy: UInt32 = 1 << 1               // 0x80000001 ECX: cores, not threads
    static let levelSMT: UInt32 = 1, levelCore: UInt32 = 2  // leaf 0xB/0x1F ECX[15:8]

    public func apply(to supported: [kvm_cpuid_entry2]) -> [kvm_cpuid_entry2] {
        let maxBasic = supported.first { $0.function == 0 }?.eax ?? 0
        let many = vcpuCount > 1
        let logical = UInt32(min(vcpuCount, 255))
        var out: [kvm_cpuid_entry2] = []
        for var e in supported {
            switch e.function {
            case 1:
                e.ebx = (e.ebx & 0x0000_ffff) | (apicID & 0xff) << 24 | (many ? logical << 16 : 0)
                e.edx = many ? e.edx | Self.htt : e.edx & ~Self.htt
            case 4:
                e.eax = (e.eax & 0x03ff_ffff) | UInt32(min(vcpuCount, 64) - 1) << 26
            case 0xb, 0x1f:
                continue  // replaced below, all subleaves at once
            case 0x8000_0001:
                e.ecx = many ? e.ecx | Self.cmpLegacy : e.ecx & ~Self.cmpLegacy
            case 0x8000_0008:
                e.ecx = (e.ecx & ~0xf0ff) | coreIDBits << 12 | UInt32(min(vcpuCount, 256) - 1)
            case 0x8000_001e:
                e.eax = apicID
                e.ebx = (e.ebx & ~0xffff) | (apicID & 0xff)    // core id; one thread per core
                e.ecx = e.ecx & ~0x7ff                          // node 0 of one
            default:
                break
            }
            out.append(e)
        }
        for leaf: UInt32 in [0xb, 0x1f] where leaf <= maxBasic && supported.contains(where: { $0.function == leaf }) {
            out += extendedTopology(leaf: leaf)
        }
        return out
    }

    /// Leaf 0xB or 0x1F: the SMT level (one thread), the core level (every vCPU), then the
    /// terminating invalid level; every subleaf carries the x2APIC id in EDX.
    func extendedTopology(leaf: UInt32) -> [kvm_cpuid_entry2] {
        func entry(_ subleaf: UInt32, shift: UInt32, count: UInt32, type: UInt32) -> kvm_cpuid_entry2 {
            var e = kvm_cpuid_entry2()
            e.function = leaf
            e.index = subleaf
            e.flags = UInt32(KVM_CPUID_FLAG_SIGNIFCANT_INDEX)
            e.eax = shift
            e.ebx = count
            e.ecx = type << 8 | subleaf
            e.edx = apicID
            return e
        }
        return [entry(0, shift: 0, count: 1, type: Self.levelSMT),
                entry(1, shift: coreIDBits, count: UInt32(vcpuCount), type: Self.levelCore),
                entry(2, shift: 0, count: 0, type: 0)]
    }
}
