import CKVM
import KVM

/// What the monitor reads: registers and memory, physical or through the page tables.
extension Machine {
    /// One vCPU's registers, read on its own thread between two entries into the guest: the
    /// other vCPUs keep running.
    public func registers(cpu: Int) throws -> CPURegisters {
        guard vcpus.indices.contains(cpu) else { throw MachineError.noSuchCPU(cpu) }
        return try MachineError.during("read the registers", vcpu: cpu) {
            try vcpus[cpu].perform { vcpu in
                CPURegisters(regs: try vcpu.getRegs(), sregs: try vcpu.getSregs(),
                             fpu: try vcpu.getFPU(), debug: try vcpu.getDebugRegs())
            }
        }
    }

    /// Each vCPU's thread and whether it is halted (HLT, or an AP still waiting for its
    /// start-up IPI), for `info cpus`.
    public func vcpuStatus() -> [(threadID: Int, halted: Bool)] {
        vcpus.map { thread in
            let mp = try? thread.perform { try $0.getMPState() }
            let running = mp.map { Int32($0.mp_state) == KVM_MP_STATE_RUNNABLE } ?? true
            return (thread.threadID, !running)
        }
    }

    public func readPhysical(_ address: UInt64, count: Int) throws -> [UInt8] {
        try memory.read(address, count: count)
    }

    /// Reads guest-virtual memory page by page: consecutive virtual pages need not be
    /// consecutive in physical memory.
    public func readVirtual(_ address: UInt64, count: Int, cpu: Int) throws -> [UInt8] {
        let walker = PageWalker(registers: try registers(cpu: cpu)) { [memory] pa, size in
            guard let v = try? memory.readUInt64(pa) else { return nil }
            return size == 4 ? v & 0xffff_ffff : v
        }
        var out: [UInt8] = []
        out.reserveCapacity(count)
        var va = address
        while out.count < count {
            let chunk = min(count - out.count, 4096 - Int(va & 0xfff))
            out += try memory.read(try walker.translate(va), count: chunk)
            va &+= UInt64(chunk)
        }
        return out
    }
}
