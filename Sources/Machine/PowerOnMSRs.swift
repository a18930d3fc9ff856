import CKVM
import KVM

/// MSR values a vCPU gets at power-on that KVM does not give it, the ones QEMU (through SeaBIOS),
/// Firecracker and Cloud Hypervisor all set: MTRRs on with write-back as the default type, and
/// fast string operations allowed. `system_reset` puts them back with the rest of the power-on
/// state; a vCPU state from before the MTRRs were saved gets the MTRR part (`mtrrs`).
enum PowerOnMSRs {
    /// IA32_MISC_ENABLE, and its bit 0: without it Linux on Intel turns off `rep movs`/`stos`
    /// fast strings (ERMS) and says "Disabled fast string operations".
    static let miscEnable: UInt32 = 0x1a0
    static let fastStrings: UInt64 = 1 << 0

    /// `cpuid` is the vCPU's, `mtrrs` this host's MTRR set (`StateMSRs.mtrrs`), `kvmMiscEnable`
    /// IA32_MISC_ENABLE as KVM set it (nil where KVM has none): its other bits stay KVM's.
    static func entries(cpuid: [kvm_cpuid_entry2], mtrrs: [UInt32], kvmMiscEnable: UInt64?) -> [(index: UInt32, value: UInt64)] {
        let misc = kvmMiscEnable.map { [(index: miscEnable, value: $0 | fastStrings)] } ?? []
        return misc + (MTRR.advertised(in: cpuid) ? Self.mtrrs(mtrrs) : [])
    }

    /// The MTRRs as Firecracker and Cloud Hypervisor leave them: enabled, write-back by default,
    /// no range set and fixed ranges off (SeaBIOS types QEMU's VGA window and option ROMs below
    /// 1 MiB apart; this machine has neither).
    static func mtrrs(_ set: [UInt32]) -> [(index: UInt32, value: UInt64)] {
        set.map { (index: $0, value: $0 == MTRR.defaultTypeMSR ? MTRR.enabledWriteBack : 0) }
    }
}
