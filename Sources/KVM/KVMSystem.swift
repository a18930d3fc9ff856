import CKVM
import Glibc

/// The /dev/kvm system handle: capability queries and VM creation.
public final class KVMSystem {
    let fd: OwnedFD

    public init(path: String = "/dev/kvm") throws {
        let raw = open(path, O_RDWR | O_CLOEXEC)
        guard raw >= 0 else { throw KVMError.open(path: path, errno: errno) }
        fd = OwnedFD(raw)
        let version = try fd.ioctl("KVM_GET_API_VERSION", CKVM_GET_API_VERSION)
        guard version == 12 else { throw KVMError.unsupportedAPIVersion(version) }
        try Self.requireCapabilities(checkExtension)
    }

    /// What swiftkvm cannot run without: guest RAM from user memory, the in-kernel irqchip and
    /// PIT, the TSS and identity-map addresses the platform set-up gives, and immediate_exit,
    /// which pausing relies on. Checked at open, so a host lacking one is told so plainly
    /// instead of failing later in some ioctl.
    static let requiredCapabilities: [(name: String, cap: Int32)] = [
        ("KVM_CAP_USER_MEMORY", Int32(KVM_CAP_USER_MEMORY)),
        ("KVM_CAP_IRQCHIP", Int32(KVM_CAP_IRQCHIP)),
        ("KVM_CAP_PIT2", Int32(KVM_CAP_PIT2)),
        ("KVM_CAP_SET_TSS_ADDR", Int32(KVM_CAP_SET_TSS_ADDR)),
        ("KVM_CAP_SET_IDENTITY_MAP_ADDR", Int32(KVM_CAP_SET_IDENTITY_MAP_ADDR)),
        ("KVM_CAP_IMMEDIATE_EXIT", Int32(KVM_CAP_IMMEDIATE_EXIT)),
    ]

    static func requireCapabilities(_ check: (Int32) -> Int32) throws {
        if let missing = requiredCapabilities.first(where: { check($0.cap) <= 0 }) {
            throw KVMError.missingCapability(missing.name)
        }
    }

    /// KVM_CHECK_EXTENSION: 0 when absent, otherwise a capability-specific value.
    public func checkExtension(_ cap: Int32) -> Int32 {
        (try? fd.ioctl("KVM_CHECK_EXTENSION", CKVM_CHECK_EXTENSION, UInt(cap))) ?? 0
    }

    /// The most vCPUs one VM may have: KVM_CAP_MAX_VCPUS, else KVM_CAP_NR_VCPUS, else the 4
    /// the KVM API documentation promises when neither is offered.
    public var maxVCPUs: Int {
        let max = checkExtension(Int32(KVM_CAP_MAX_VCPUS))
        if max > 0 { return Int(max) }
        let recommended = checkExtension(Int32(KVM_CAP_NR_VCPUS))
        return recommended > 0 ? Int(recommended) : 4
    }

    func vcpuMmapSize() throws -> Int {
        Int(try fd.ioctl("KVM_GET_VCPU_MMAP_SIZE", CKVM_GET_VCPU_MMAP_SIZE))
    }

    /// The CPUID leaves this host's KVM can offer a guest.
    public func supportedCPUID() throws -> [kvm_cpuid_entry2] {
        var capacity: UInt32 = 128
        while true {
            guard let buf = ckvm_cpuid2_alloc(capacity) else { throw KVMError.ioctl(call: "KVM_GET_SUPPORTED_CPUID", errno: ENOMEM) }
            defer { free(buf) }
            do {
                try fd.ioctl("KVM_GET_SUPPORTED_CPUID", CKVM_GET_SUPPORTED_CPUID, pointer: buf)
            } catch KVMError.ioctl(_, let err) where err == E2BIG && capacity < 4096 {
                capacity *= 2
                continue
            }
            let entries = ckvm_cpuid2_entries(buf)!
            // SAFETY: the kernel wrote `nent` entries into the buffer allocated for `capacity`.
            return Array(UnsafeBufferPointer(start: entries, count: Int(buf.pointee.nent)))
        }
    }

    /// A CPUID leaf's four registers.
    public typealias CPUIDWords = (eax: UInt32, ebx: UInt32, ecx: UInt32, edx: UInt32)

    /// The host processor's name, as CPUID leaves 0x80000002-0x80000004 give it (48 bytes of
    /// ASCII in EAX, EBX, ECX, EDX of each), read with the instruction itself: KVM's supported
    /// CPUID leaves them zero. Empty where the host has no such leaves.
    public static func hostBrandLeaves() -> [CPUIDWords] {
        func leaf(_ function: UInt32) -> CPUIDWords {
            var regs: [UInt32] = [0, 0, 0, 0]
            ckvm_host_cpuid(function, 0, &regs)
            return (regs[0], regs[1], regs[2], regs[3])
        }
        guard leaf(0x8000_0000).eax >= 0x8000_0004 else { return [] }
        return (UInt32(0x8000_0002)...0x8000_0004).map(leaf)
    }

    /// MSR indices KVM saves and restores (KVM_GET_MSR_INDEX_LIST).
    public func msrIndexList() throws -> [UInt32] {
        var probe = kvm_msr_list()
        _ = try? fd.ioctl("KVM_GET_MSR_INDEX_LIST", CKVM_GET_MSR_INDEX_LIST, &probe)  // E2BIG, sets nmsrs
        let n = max(probe.nmsrs, 1)
        guard let list = ckvm_msr_list_alloc(n) else { throw KVMError.ioctl(call: "KVM_GET_MSR_INDEX_LIST", errno: ENOMEM) }
        defer { free(list) }
        try fd.ioctl("KVM_GET_MSR_INDEX_LIST", CKVM_GET_MSR_INDEX_LIST, pointer: list)
        // SAFETY: the list was allocated for `n` indices and the kernel reports how many it wrote.
        return Array(UnsafeBufferPointer(start: ckvm_msr_list_indices(list), count: Int(min(list.pointee.nmsrs, n))))
    }

    public func createVM() throws -> VirtualMachine {
        let raw = try fd.ioctl("KVM_CREATE_VM", CKVM_CREATE_VM, 0)
        return try VirtualMachine(fd: OwnedFD(raw), system: self)
    }
}
