import CKVM
import KVM

/// The CPUID a guest sees, built from KVM_GET_SUPPORTED_CPUID. Each step is a pure function
/// from entries to entries, so steps compose (per-vCPU topology is another such step, applied
/// after these) and are unit-tested without KVM.
public enum GuestCPUID {
    /// Leaf 1 ECX: a hypervisor is present. KVM never reports it as supported, and without it
    /// Linux does not look for KVM's leaves (no kvmclock: it calibrates the TSC against the PIT).
    static let hypervisorBit: UInt32 = 1 << 31
    /// Leaf 1 ECX: the LAPIC's TSC-deadline timer mode; KVM emulates it when the capability
    /// says so but leaves the bit to the VMM (KVM_CAP_TSC_DEADLINE_TIMER).
    static let tscDeadlineBit: UInt32 = 1 << 24

    public static let kvmSignatureLeaf: UInt32 = 0x4000_0000
    public static let kvmFeaturesLeaf: UInt32 = 0x4000_0001
    /// VMware's timing leaf as QEMU's vmware-cpuid-freq offers it: EAX TSC kHz, EBX APIC bus kHz.
    public static let timingLeaf: UInt32 = 0x4000_0010
    /// "KVMKVMKVM\0\0\0" as EBX, ECX, EDX.
    static let kvmSignature: (UInt32, UInt32, UInt32) = (0x4b4d_564b, 0x564b_4d56, 0x0000_004d)
    /// KVM's LAPIC timer counts at 1 GHz (APIC_BUS_CYCLE_NS = 1).
    public static let apicBusHz: UInt64 = 1_000_000_000

    /// What every guest gets: KVM's supported leaves with the hypervisor bit, KVM's
    /// paravirtual leaves, and the TSC frequency where KVM knows it.
    public static func build(supported: [kvm_cpuid_entry2], tscKHz: UInt32, tscDeadlineTimer: Bool,
                             hostBrand: [KVMSystem.CPUIDWords] = []) -> [kvm_cpuid_entry2] {
        var entries = markHypervisor(supported, tscDeadlineTimer: tscDeadlineTimer)
        entries = withKVMLeaves(entries)
        if tscKHz > 0 { entries = withTSCFrequency(entries, khz: tscKHz) }
        return withBrand(entries, host: hostBrand)
    }

    /// Leaves 0x80000002-0x80000004: the processor's name, Linux's "model name". KVM reports
    /// them zero, so a guest would see none (Linux then names an AMD CPU by family: "AMD
    /// Hammer"); as QEMU's `-cpu host` does, the host's own name goes there. Only where the
    /// guest's highest extended leaf includes them and KVM left all three empty, so a name KVM
    /// does give is kept.
    public static func withBrand(_ entries: [kvm_cpuid_entry2],
                                 host: [KVMSystem.CPUIDWords]) -> [kvm_cpuid_entry2] {
        let functions = UInt32(0x8000_0002)...0x8000_0004
        guard host.count == functions.count, let maxExtended = entry(entries, function: 0x8000_0000)?.eax,
              maxExtended >= functions.upperBound,
              functions.allSatisfy({ f in entry(entries, function: f).map { $0.eax | $0.ebx | $0.ecx | $0.edx == 0 } ?? true })
        else { return entries }
        var result = entries
        for (function, words) in zip(functions, host) {
            result = upserting(result, function: function) { e in (e.eax, e.ebx, e.ecx, e.edx) = words }
        }
        return result
    }

    public static func markHypervisor(_ entries: [kvm_cpuid_entry2], tscDeadlineTimer: Bool) -> [kvm_cpuid_entry2] {
        modifying(entries, function: 1) { e in
            e.ecx |= hypervisorBit
            if tscDeadlineTimer { e.ecx |= tscDeadlineBit }
        }
    }

    /// KVM's signature leaf (its EAX the highest hypervisor leaf) and the feature leaf as KVM
    /// reports it (kvmclock, async PF, PV EOI, steal time...); an absent feature leaf offers none.
    public static func withKVMLeaves(_ entries: [kvm_cpuid_entry2]) -> [kvm_cpuid_entry2] {
        var result = entries
        if entry(result, function: kvmFeaturesLeaf) == nil {
            result.append(makeEntry(function: kvmFeaturesLeaf))
        }
        let existingMax = entry(result, function: kvmSignatureLeaf)?.eax ?? 0
        result = upserting(result, function: kvmSignatureLeaf) { e in
            e.eax = max(existingMax, kvmFeaturesLeaf)
            (e.ebx, e.ecx, e.edx) = kvmSignature
        }
        return result
    }

    /// The TSC frequency where Linux and other guests look for it, so none calibrates: the
    /// timing leaf 0x40000010 (raising the hypervisor range to include it) and, on Intel,
    /// leaves 0x15 (TSC/crystal ratio, the crystal being the 1 GHz APIC clock) and 0x16.
    public static func withTSCFrequency(_ entries: [kvm_cpuid_entry2], khz: UInt32) -> [kvm_cpuid_entry2] {
        var result = upserting(entries, function: timingLeaf) { e in
            e.eax = khz
            e.ebx = UInt32(apicBusHz / 1000)
            e.ecx = 0; e.edx = 0
        }
        result = upserting(result, function: kvmSignatureLeaf) { e in e.eax = max(e.eax, timingLeaf) }
        guard isIntel(result), let maxBasic = entry(result, function: 0)?.eax else { return result }
        if maxBasic >= 0x15 {
            result = upserting(result, function: 0x15) { e in
                // Linux multiplies crystal kHz by EBX in 32 bits: offer the ratio only when it is
                // exact and small enough, else nothing (zero EBX), never the host's crystal.
                if let (numerator, denominator) = tscCrystalRatio(khz: khz) {
                    e.eax = denominator; e.ebx = numerator; e.ecx = UInt32(apicBusHz)
                } else {
                    e.eax = 0; e.ebx = 0; e.ecx = 0
                }
                e.edx = 0
            }
        }
        if maxBasic >= 0x16 {
            result = upserting(result, function: 0x16) { e in
                e.eax = khz / 1000; e.ebx = khz / 1000; e.ecx = UInt32(apicBusHz / 1_000_000); e.edx = 0
            }
        }
        return result
    }

    /// TSC Hz / 1 GHz as numerator / denominator for leaf 0x15, when Linux can use it exactly:
    /// it computes crystal_khz (10^6) * numerator in 32 bits.
    static func tscCrystalRatio(khz: UInt32) -> (UInt32, UInt32)? {
        let crystalKHz = UInt64(apicBusHz / 1000)
        var a = UInt64(khz), b = crystalKHz
        while b != 0 { (a, b) = (b, a % b) }
        let numerator = UInt64(khz) / a, denominator = crystalKHz / a
        guard crystalKHz * numerator <= UInt64(UInt32.max) else { return nil }
        return (UInt32(numerator), UInt32(denominator))
    }

    static func isIntel(_ entries: [kvm_cpuid_entry2]) -> Bool {
        guard let e = entry(entries, function: 0) else { return false }
        return (e.ebx, e.edx, e.ecx) == (0x756e_6547, 0x4965_6e69, 0x6c65_746e)  // "GenuineIntel"
    }

    // MARK: Entry helpers

    public static func entry(_ entries: [kvm_cpuid_entry2], function: UInt32, index: UInt32 = 0) -> kvm_cpuid_entry2? {
        entries.first { $0.function == function && $0.index == index }
    }

    static func modifying(_ entries: [kvm_cpuid_entry2], function: UInt32, _ change: (inout kvm_cpuid_entry2) -> Void) -> [kvm_cpuid_entry2] {
        entries.map { e in
            guard e.function == function, e.index == 0 else { return e }
            var copy = e
            change(&copy)
            return copy
        }
    }

    static func upserting(_ entries: [kvm_cpuid_entry2], function: UInt32, _ change: (inout kvm_cpuid_entry2) -> Void) -> [kvm_cpuid_entry2] {
        if entry(entries, function: function) != nil { return modifying(entries, function: function, change) }
        var e = makeEntry(function: function)
        change(&e)
        return entries + [e]
    }

    static func makeEntry(function: UInt32, eax: UInt32 = 0, ebx: UInt32 = 0, ecx: UInt32 = 0, edx: UInt32 = 0) -> kvm_cpuid_entry2 {
        var e = kvm_cpuid_entry2()
        e.function = function
        e.eax = eax; e.ebx = ebx; e.ecx = ecx; e.edx = edx
        return e
    }
}
