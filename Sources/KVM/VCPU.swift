import CKVM
import Glibc

/// Port and MMIO accesses a vCPU makes that KVM hands to user space.
public protocol VCPUExitHandler: AnyObject {
    func portRead(port: UInt16, size: Int) -> UInt32
    func portWrite(port: UInt16, size: Int, value: UInt32)
    func mmioRead(address: UInt64, size: Int) -> UInt64
    func mmioWrite(address: UInt64, size: Int, value: UInt64)
}

/// Why `VCPU.run` returned to its caller (port and MMIO exits are handled inside).
public enum VCPUExit: Equatable {
    /// A signal or `immediate_exit` interrupted KVM_RUN: the caller asked for the CPU back.
    case interrupted
    /// Triple fault (KVM_EXIT_SHUTDOWN).
    case shutdown
    case halted
    case systemEvent(type: UInt32)
    case internalError(suberror: UInt32, data: [UInt64])
    case failedEntry(reason: UInt32)
    case unexpected(reason: UInt32)
}

/// A KVM vCPU file descriptor and its shared `kvm_run` page.
public final class VCPU {
    let fd: OwnedFD
    public let id: Int
    private let run: UnsafeMutablePointer<kvm_run>
    private let runSize: Int

    init(fd: OwnedFD, id: Int, mmapSize: Int) throws {
        self.fd = fd
        self.id = id
        let p = mmap(nil, mmapSize, PROT_READ | PROT_WRITE, MAP_SHARED, fd.raw, 0)
        guard let p, p != MAP_FAILED else { throw KVMError.mmap(what: "kvm_run of vCPU \(id)", size: mmapSize, errno: errno) }
        // SAFETY: KVM maps a kvm_run structure at offset 0 of the vCPU fd.
        run = p.bindMemory(to: kvm_run.self, capacity: 1)
        runSize = mmapSize
    }

    deinit { munmap(run, runSize) }

    /// Makes the next (or the current, once a signal arrives) KVM_RUN return at once.
    /// Safe to call from any thread.
    public func requestImmediateExit() {
        run.pointee.immediate_exit = 1
    }

    /// Runs the guest until something other than port or MMIO I/O needs the caller.
    public func run(handler: VCPUExitHandler) throws -> VCPUExit {
        while true {
            let r = ckvm_ioctl_val(fd.raw, CKVM_RUN, 0)
            if r < 0 {
                let err = errno
                if err == EINTR || err == EAGAIN {
                    run.pointee.immediate_exit = 0
                    return .interrupted
                }
                throw KVMError.ioctl(call: "KVM_RUN", errno: err)
            }
            switch Int32(run.pointee.exit_reason) {
            case KVM_EXIT_IO:
                handleIO(handler)
            case KVM_EXIT_MMIO:
                handleMMIO(handler)
            case KVM_EXIT_INTR:
                run.pointee.immediate_exit = 0
                return .interrupted
            case KVM_EXIT_SHUTDOWN:
                return .shutdown
            case KVM_EXIT_HLT:
                return .halted
            case KVM_EXIT_SYSTEM_EVENT:
                return .systemEvent(type: ckvm_run_system_event_type(run))
            case KVM_EXIT_INTERNAL_ERROR:
                let n = min(ckvm_run_internal_ndata(run), 16)
                return .internalError(suberror: ckvm_run_internal_suberror(run),
                                      data: (0..<n).map { ckvm_run_internal_data(run, $0) })
            case KVM_EXIT_FAIL_ENTRY:
                return .failedEntry(reason: ckvm_run_fail_entry_reason(run))
            default:
                return .unexpected(reason: run.pointee.exit_reason)
            }
        }
    }

    private func handleIO(_ handler: VCPUExitHandler) {
        let io = ckvm_run_io(run)
        let size = Int(io.size)
        guard size == 1 || size == 2 || size == 4, Int(io.data_offset) + size * Int(io.count) <= runSize else { return }
        // SAFETY: KVM places `count` items of `size` bytes at data_offset inside the kvm_run
        // mapping (bounds checked against the mapping size above).
        var data = UnsafeMutableRawPointer(run) + Int(io.data_offset)
        for _ in 0..<io.count {
            if io.direction == UInt8(KVM_EXIT_IO_OUT) {
                let value: UInt32
                switch size {
                case 1: value = UInt32(data.load(as: UInt8.self))
                case 2: value = UInt32(data.loadUnaligned(as: UInt16.self))
                default: value = data.loadUnaligned(as: UInt32.self)
                }
                handler.portWrite(port: io.port, size: size, value: value)
            } else {
                let value = handler.portRead(port: io.port, size: size)
                switch size {
                case 1: data.storeBytes(of: UInt8(truncatingIfNeeded: value), as: UInt8.self)
                case 2: data.storeBytes(of: UInt16(truncatingIfNeeded: value), toByteOffset: 0, as: UInt16.self)
                default: data.storeBytes(of: value, toByteOffset: 0, as: UInt32.self)
                }
            }
            data += size
        }
    }

    private func handleMMIO(_ handler: VCPUExitHandler) {
        let m = ckvm_run_mmio(run)
        let len = Int(min(m.len, 8))
        guard let bytes = m.data else { return }
        if m.is_write != 0 {
            var value: UInt64 = 0
            // SAFETY: kvm_run.mmio.data is an 8-byte array inside the mapping; len <= 8.
            withUnsafeMutableBytes(of: &value) { $0.baseAddress!.copyMemory(from: bytes, byteCount: len) }
            handler.mmioWrite(address: m.phys_addr, size: len, value: value)
        } else {
            var value = handler.mmioRead(address: m.phys_addr, size: len)
            // SAFETY: as above; KVM copies these bytes into the guest's destination register.
            withUnsafeBytes(of: &value) { bytes.update(from: $0.bindMemory(to: UInt8.self).baseAddress!, count: len) }
        }
    }

    // MARK: Registers

    public func getRegs() throws -> kvm_regs {
        var v = kvm_regs(); try fd.ioctl("KVM_GET_REGS", CKVM_GET_REGS, &v); return v
    }
    public func setRegs(_ value: kvm_regs) throws {
        var v = value; try fd.ioctl("KVM_SET_REGS", CKVM_SET_REGS, &v)
    }
    public func getSregs() throws -> kvm_sregs {
        var v = kvm_sregs(); try fd.ioctl("KVM_GET_SREGS", CKVM_GET_SREGS, &v); return v
    }
    public func setSregs(_ value: kvm_sregs) throws {
        var v = value; try fd.ioctl("KVM_SET_SREGS", CKVM_SET_SREGS, &v)
    }
    public func getFPU() throws -> kvm_fpu {
        var v = kvm_fpu(); try fd.ioctl("KVM_GET_FPU", CKVM_GET_FPU, &v); return v
    }
    /// KVM_GET_MP_STATE: runnable, halted, or (an AP before its start-up IPI) uninitialized.
    public func getMPState() throws -> kvm_mp_state {
        var v = kvm_mp_state(); try fd.ioctl("KVM_GET_MP_STATE", CKVM_GET_MP_STATE, &v); return v
    }
    public func getDebugRegs() throws -> kvm_debugregs {
        var v = kvm_debugregs(); try fd.ioctl("KVM_GET_DEBUGREGS", CKVM_GET_DEBUGREGS, &v); return v
    }

    public func setCPUID(_ entries: [kvm_cpuid_entry2]) throws {
        guard let buf = ckvm_cpuid2_alloc(UInt32(entries.count)) else { throw KVMError.ioctl(call: "KVM_SET_CPUID2", errno: ENOMEM) }
        defer { free(buf) }
        let dst = ckvm_cpuid2_entries(buf)!
        // SAFETY: the buffer was allocated with room for entries.count entries.
        for (i, e) in entries.enumerated() { dst[i] = e }
        try fd.ioctl("KVM_SET_CPUID2", CKVM_SET_CPUID2, pointer: buf)
    }

    public func getCPUID(capacity: Int = 256) throws -> [kvm_cpuid_entry2] {
        guard let buf = ckvm_cpuid2_alloc(UInt32(capacity)) else { throw KVMError.ioctl(call: "KVM_GET_CPUID2", errno: ENOMEM) }
        defer { free(buf) }
        try fd.ioctl("KVM_GET_CPUID2", CKVM_GET_CPUID2, pointer: buf)
        // SAFETY: the kernel wrote nent (<= capacity) entries.
        return Array(UnsafeBufferPointer(start: ckvm_cpuid2_entries(buf), count: Int(min(buf.pointee.nent, UInt32(capacity)))))
    }

    /// Reads the MSRs it can; returns (index, value) for each MSR KVM answered.
    public func getMSRs(_ indices: [UInt32]) throws -> [(index: UInt32, value: UInt64)] {
        guard !indices.isEmpty else { return [] }
        guard let buf = ckvm_msrs_alloc(UInt32(indices.count)) else { throw KVMError.ioctl(call: "KVM_GET_MSRS", errno: ENOMEM) }
        defer { free(buf) }
        let entries = ckvm_msrs_entries(buf)!
        // SAFETY: room for indices.count entries was allocated.
        for (i, index) in indices.enumerated() { entries[i] = kvm_msr_entry(index: index, reserved: 0, data: 0) }
        let n = Int(try fd.ioctl("KVM_GET_MSRS", CKVM_GET_MSRS, pointer: buf))
        if n < indices.count {
            // KVM stops at the first MSR it cannot read; read the rest one by one, skipping those.
            var result = (0..<n).map { (entries[$0].index, entries[$0].data) }
            for index in indices[(n + 1)...] {
                result += (try? getMSRs([index])) ?? []
            }
            return result
        }
        return (0..<n).map { (entries[$0].index, entries[$0].data) }
    }

    public func setMSRs(_ msrs: [(index: UInt32, value: UInt64)]) throws {
        guard !msrs.isEmpty else { return }
        guard let buf = ckvm_msrs_alloc(UInt32(msrs.count)) else { throw KVMError.ioctl(call: "KVM_SET_MSRS", errno: ENOMEM) }
        defer { free(buf) }
        let entries = ckvm_msrs_entries(buf)!
        // SAFETY: room for msrs.count entries was allocated.
        for (i, m) in msrs.enumerated() { entries[i] = kvm_msr_entry(index: m.index, reserved: 0, data: m.value) }
        let n = Int(try fd.ioctl("KVM_SET_MSRS", CKVM_SET_MSRS, pointer: buf))
        // KVM stops at the first MSR it refuses and returns how many it set.
        guard n == msrs.count else {
            throw KVMError.shortTransfer(call: "KVM_SET_MSRS (stopped at MSR 0x\(String(msrs[n].index, radix: 16)))",
                                         expected: msrs.count, got: n)
        }
    }

    // MARK: Whole-CPU state, in the orders kvm-state.md gives

    /// `msrs` decides which MSRs go with the CPUID read here.
    public func captureState(msrs: StateMSRs, xsaveSize: Int) throws -> VCPUState {
        var s = VCPUState()
        try fd.ioctl("KVM_GET_MP_STATE", CKVM_GET_MP_STATE, &s.mpState)
        s.regs = try getRegs()
        s.sregs = try getSregs()
        s.xsave = [UInt8](repeating: 0, count: max(xsaveSize, MemoryLayout<kvm_xsave>.size))
        let xsaveCall = s.xsave.count > MemoryLayout<kvm_xsave>.size ? CKVM_GET_XSAVE2 : CKVM_GET_XSAVE
        try s.xsave.withUnsafeMutableBytes { buf in
            // SAFETY: the buffer holds at least the XSAVE size KVM reported for this VM.
            _ = try fd.ioctl("KVM_GET_XSAVE", xsaveCall, pointer: buf.baseAddress!)
        }
        try fd.ioctl("KVM_GET_XCRS", CKVM_GET_XCRS, &s.xcrs)
        s.debugRegs = try getDebugRegs()
        try fd.ioctl("KVM_GET_LAPIC", CKVM_GET_LAPIC, &s.lapic)
        s.tscKHz = UInt32(try fd.ioctl("KVM_GET_TSC_KHZ", CKVM_GET_TSC_KHZ))
        s.cpuid = try getCPUID()
        s.msrs = try getMSRs(msrs.indices(cpuid: s.cpuid))
        try fd.ioctl("KVM_GET_VCPU_EVENTS", CKVM_GET_VCPU_EVENTS, &s.events)
        return s
    }

    /// `settingCPUID`: KVM refuses KVM_SET_CPUID2 after the first KVM_RUN (unless unchanged, and
    /// KVM_GET_CPUID2 reports dynamic bits that differ from what was set): pass false on reset.
    public func restore(_ s: VCPUState, settingCPUID: Bool) throws {
        if settingCPUID { try setCPUID(s.cpuid) }
        var mp = s.mpState
        try fd.ioctl("KVM_SET_MP_STATE", CKVM_SET_MP_STATE, &mp)
        try setRegs(s.regs)
        try setSregs(s.sregs)
        var xsave = s.xsave
        try xsave.withUnsafeMutableBytes { buf in
            // SAFETY: the buffer is a complete XSAVE image captured by KVM_GET_XSAVE(2).
            _ = try fd.ioctl("KVM_SET_XSAVE", CKVM_SET_XSAVE, pointer: buf.baseAddress!)
        }
        // A KVM on a CPU without XSAVE reports no XCRs and refuses KVM_SET_XCRS (EINVAL), as it
        // would refuse any: with none captured there is nothing to set.
        if s.xcrs.nr_xcrs > 0 {
            var xcrs = s.xcrs
            try fd.ioctl("KVM_SET_XCRS", CKVM_SET_XCRS, &xcrs)
        }
        var dr = s.debugRegs
        try fd.ioctl("KVM_SET_DEBUGREGS", CKVM_SET_DEBUGREGS, &dr)
        var lapic = s.lapic
        try fd.ioctl("KVM_SET_LAPIC", CKVM_SET_LAPIC, &lapic)
        // TSC_DEADLINE restores only after the TSC itself and the LAPIC: write it last.
        let deadline: UInt32 = 0x6e0
        try setMSRs(s.msrs.filter { $0.index != deadline })
        try setMSRs(s.msrs.filter { $0.index == deadline })
        var events = s.events
        try fd.ioctl("KVM_SET_VCPU_EVENTS", CKVM_SET_VCPU_EVENTS, &events)
    }

    public func setTSCKHz(_ khz: UInt32) throws {
        try fd.ioctl("KVM_SET_TSC_KHZ", CKVM_SET_TSC_KHZ, UInt(khz))
    }
    /// Tells the guest's kvmclock that the VM was stopped (PVCLOCK_GUEST_STOPPED), so Linux's
    /// soft-lockup watchdog does not count the pause as a hang. False when the guest has not
    /// enabled kvmclock (KVM answers EINVAL): there is nothing to tell it.
    @discardableResult
    public func markClockPaused() throws -> Bool {
        do {
            try fd.ioctl("KVM_KVMCLOCK_CTRL", CKVM_KVMCLOCK_CTRL)
            return true
        } catch KVMError.ioctl(_, let err) where err == EINVAL {
            return false
        }
    }

    public func tscKHz() throws -> UInt32 {
        UInt32(try fd.ioctl("KVM_GET_TSC_KHZ", CKVM_GET_TSC_KHZ))
    }
}
