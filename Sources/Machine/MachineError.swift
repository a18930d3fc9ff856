import Glibc
import KVM
import SystemSupport

/// Errors from running and controlling a machine, worded for the person at the monitor. A
/// failed host or KVM call is kept whole as the cause (`underlying`, `underlyingErrno`), with
/// what the machine was doing and on which vCPU.
public enum MachineError: Error, CustomStringConvertible, Equatable, WrappingError {
    /// A KVM call failed while the machine tried to `action`; `vcpu` when it was one vCPU's.
    case kvm(KVMError, action: String, vcpu: Int? = nil)
    /// A host call other than KVM's (a thread, a pipe) failed while the machine tried to `action`.
    case host(SystemCallError, action: String)
    case boot(BootError)
    case memorySizeNotPageAligned(UInt64)
    case refusedAfterMigration
    case waitingForIncomingMigration
    case guestStopped(reason: String)
    case noSuchCPU(Int)
    case unsupportedVCPUCount(requested: Int, maximum: Int)
    case vcpuThreadEnded(index: Int)
    case stateMismatch(section: String, detail: String)
    /// A state section's bytes do not decode (a `StateDecodingError`, a `StateFieldError`).
    case unreadableState(section: String, cause: ErrorCause)
    case missingStateSection(String)
    case unexpectedStateSection(String)

    public var description: String {
        switch self {
        case .kvm(let cause, let action, let vcpu):
            let on = vcpu.map { " (vCPU \($0))" } ?? ""
            return "cannot \(action)\(on): \(cause)\(Self.advice(for: cause))"
        case .host(let cause, let action): return "cannot \(action): \(cause)"
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
        case .unreadableState(let section, let cause): return "state section '\(section)': \(cause)"
        case .missingStateSection(let name): return "the migrated state lacks section '\(name)'"
        case .unexpectedStateSection(let name): return "the migrated state has a section '\(name)' this machine does not know"
        }
    }

    public var underlying: (any Error)? {
        switch self {
        case .kvm(let cause, _, _): return cause
        case .host(let cause, _): return cause
        case .boot(let cause): return cause
        case .unreadableState(_, let cause): return cause.error
        default: return nil
        }
    }

    /// What the user can do, where the errno says more than the call's name.
    private static func advice(for cause: KVMError) -> String {
        switch cause.errnoCode {
        case ENOMEM?: return "; the host is out of memory (lower -m or free memory)"
        default: return ""
        }
    }

    /// Runs `body`, turning a failed KVM or host call into `.kvm`/`.host` with this context;
    /// every other error (already a MachineError, say) passes through unchanged.
    static func during<T>(_ action: String, vcpu: Int? = nil, _ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch let e as KVMError {
            throw MachineError.kvm(e, action: action, vcpu: vcpu)
        } catch let e as SystemCallError {
            throw MachineError.host(e, action: action)
        }
    }
}
