/// Errors from running and controlling a machine, worded for the person at the monitor.
public enum MachineError: Error, CustomStringConvertible, Equatable {
    case kvm(String)
    case boot(BootError)
    case memorySizeNotPageAligned(UInt64)
    case refusedAfterMigration
    case waitingForIncomingMigration
    case guestStopped(reason: String)
    case noSuchCPU(Int)
    case unsupportedVCPUCount(requested: Int, maximum: Int)
    case vcpuThreadEnded(index: Int)
    case stateMismatch(section: String, detail: String)
    case missingStateSection(String)
    case unexpectedStateSection(String)

    public var description: String {
        switch self {
        case .kvm(let text): return text
        case .boot(let e): return e.description
        case .memorySizeNotPageAligned(let size): return "memory size \(size) is not a multiple of 4 KiB"
        case .refusedAfterMigration:
            return "the guest was migrated and now runs on the destination; resuming it here would run two copies of one guest. Use 'cont -f' to do it anyway"
        case .waitingForIncomingMigration:
            return "this machine is waiting for an incoming migration; it starts when the migration completes"
        case .guestStopped(let reason): return "the guest has stopped (\(reason)); use system_reset to boot it again"
        case .noSuchCPU(let n): return "no CPU #\(n)"
        case .unsupportedVCPUCount(let requested, let maximum):
            return "\(requested) vCPUs requested; 1 to \(maximum) are possible here (this host's KVM_CAP_MAX_VCPUS, and at most 255 for 8-bit APIC IDs)"
        case .vcpuThreadEnded(let index): return "vCPU \(index) has stopped running (the machine is shutting down)"
        case .stateMismatch(let section, let detail): return "state section '\(section)': \(detail)"
        case .missingStateSection(let name): return "the migrated state lacks section '\(name)'"
        case .unexpectedStateSection(let name): return "the migrated state has a section '\(name)' this machine does not know"
        }
    }
}
