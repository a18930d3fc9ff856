import CKVM

/// The memory-type range registers (Intel SDM vol. 3A, 12.11; AMD APM vol. 2, 7.7). KVM emulates
/// them for every vCPU (arch/x86/kvm/mtrr.c) but KVM_GET_MSR_INDEX_LIST names none of them, so a
/// VMM that wants them saved names them itself, as QEMU (`kvm_put_msrs`) and Cloud Hypervisor do.
public enum MTRR {
    /// MTRRcap, read-only: VCNT (bits 0-7) variable ranges, FIX (bit 8) fixed ranges, WC (bit 10).
    public static let capabilityMSR: UInt32 = 0xfe
    /// MTRRdefType: the type of memory no range covers (bits 0-7), FE (bit 10) fixed ranges
    /// enabled, E (bit 11) MTRRs enabled.
    public static let defaultTypeMSR: UInt32 = 0x2ff
    /// IA32_MTRR_PHYSBASE0; each PHYSBASEn is followed by its PHYSMASKn.
    static let firstVariableRangeMSR: UInt32 = 0x200
    /// MTRRfix64K_00000, MTRRfix16K_80000 and _A0000, MTRRfix4K_C0000 ... _F8000.
    public static let fixedRangeMSRs: [UInt32] = [0x250, 0x258, 0x259] + Array(0x268...0x26f)
    /// Variable pairs beyond 40 would run into MTRRfix64K_00000 at 0x250 (KVM offers 8).
    static let maxVariableRanges: UInt64 = 40
    static let fixedRangesBit: UInt64 = 1 << 8
    /// Leaf 1 EDX bit 12: the guest may use the MTRRs.
    public static let cpuidBit: UInt32 = 1 << 12

    /// MTRRs enabled (E), fixed ranges off, write-back wherever no range says otherwise: what
    /// Firecracker and Cloud Hypervisor give a vCPU at power-on, and the default type SeaBIOS
    /// leaves for QEMU's guests. Linux then keeps its MTRR and PAT support on instead of
    /// printing "MTRRs disabled, skipping PAT initialization too".
    public static let enabledWriteBack: UInt64 = 1 << 11 | 6

    public static func advertised(in cpuid: [kvm_cpuid_entry2]) -> Bool {
        cpuid.contains { $0.function == 1 && $0.index == 0 && $0.edx & cpuidBit != 0 }
    }

    /// Every MTRR that holds a vCPU's state, for a vCPU whose MTRRcap reads `capability`: the
    /// default type, VCNT variable pairs (base, mask) and, where FIX says so, the fixed ranges.
    public static func stateMSRs(capability: UInt64) -> [UInt32] {
        let pairs = UInt32(min(capability & 0xff, maxVariableRanges))
        let variable = (0..<pairs * 2).map { firstVariableRangeMSR + $0 }
        return [defaultTypeMSR] + variable + (capability & fixedRangesBit != 0 ? fixedRangeMSRs : [])
    }
}

/// Which MSRs a vCPU's saved state holds: those KVM_GET_MSR_INDEX_LIST names, and the MTRRs
/// where the vCPU's CPUID advertises MTRR (KVM emulates them then but does not list them; QEMU
/// and Firecracker save them on the same condition). One rule for saving a state and for
/// checking one that arrives.
public struct StateMSRs: Sendable, Equatable {
    /// KVM_GET_MSR_INDEX_LIST.
    public let listed: [UInt32]
    /// This host's MTRRs (`MTRR.stateMSRs`); empty where a state may not carry them.
    public let mtrrs: [UInt32]

    public init(listed: [UInt32], mtrrs: [UInt32]) {
        self.listed = listed
        let known = Set(listed)
        self.mtrrs = mtrrs.filter { !known.contains($0) }
    }

    /// The MSRs a vCPU with this CPUID saves, KVM's list first.
    public func indices(cpuid: [kvm_cpuid_entry2]) -> [UInt32] {
        MTRR.advertised(in: cpuid) ? listed + mtrrs : listed
    }

    /// The same rule for a state written before the MTRRs were saved.
    public var withoutMTRRs: StateMSRs { StateMSRs(listed: listed, mtrrs: []) }
}
