import Devices
import Glibc
import KVM
import SystemSupport

extension Machine: MigratableMachine {
    public var layout: MachineLayout {
        MachineLayout(ramRegions: memory.regions.map { .init(guestAddress: $0.guestAddress, size: UInt64($0.size)) },
                      vcpuCount: vcpus.count, devices: devices.layoutNames)
    }

    public var ramRegions: [GuestRAMRegion] {
        memory.regions.enumerated().map { index, region in
            GuestRAMRegion(guestAddress: region.guestAddress, size: region.size, host: region.host,
                           untouchedPagesReadAsZero: memory.backing(ofRegion: index).untouchedPagesReadAsZero)
        }
    }

    public var preallocatesRAM: Bool { configuration.preallocateRAM }

    public func mapRAM(privatelyFrom file: Int32, offsets: [Int]) throws {
        try MachineError.during("map the snapshot file as guest RAM") { try memory.mapPrivately(file: file, offsets: offsets) }
    }

    public var sharedRAM: SharedRAM? {
        memory.sharedMemory.map { SharedRAM(fd: $0.fd, offsets: $0.offsets) }
    }

    public func adoptSharedRAM(fd: Int32, offsets: [Int]) throws {
        try MachineError.during("map the handed-over shared memory as guest RAM") { try memory.adoptShared(fd: fd, offsets: offsets) }
    }

    public func releaseSharedRAM() throws {
        try MachineError.during("let go of the handed-over guest RAM") { try memory.detach() }
    }

    public func startDirtyLogging() throws {
        dirty.start(memory)
        do {
            for region in memory.regions { try vm.setMemoryRegion(region, logDirtyPages: true) }
        } catch let e as KVMError {
            stopDirtyLogging()
            throw MachineError.kvm(e, action: "start dirty page logging")
        }
    }

    public func stopDirtyLogging() {
        for region in memory.regions { try? vm.setMemoryRegion(region, logDirtyPages: false) }
        dirty.stop()
    }

    public func collectDirtyPages() throws -> [[UInt64]] {
        var trace = SwitchoverTrace(side: "machine")
        var bitmaps = dirty.takeBitmaps(memory)
        trace.mark("dirty-sync-take-bitmaps")
        for (i, region) in memory.regions.enumerated() {
            try MachineError.during("read the dirty page log of RAM slot \(region.slot)") {
                try vm.fetchDirtyLog(slot: region.slot, into: &bitmaps[i])
            }
            trace.mark("dirty-sync-get-dirty-log(slot \(region.slot), \(region.size >> 20) MiB)")
        }
        dirty.finishCollection(&bitmaps)
        trace.mark("dirty-sync-merge-vmm-writes")
        return bitmaps
    }

    public var dirtyLogRearmChunkPages: Int? { dirty.manualProtect ? DirtyTracking.rearmChunkPages : nil }

    public func rearmDirtyLog(region: Int, firstPage: Int, pageCount: Int, bitmap: ArraySlice<UInt64>) throws {
        let slot = memory.regions[region].slot
        try MachineError.during("re-arm the dirty page log of RAM slot \(slot)") {
            try vm.clearDirtyLog(slot: slot, firstPage: firstPage, pageCount: pageCount, bitmap: bitmap)
        }
    }

    public func setCPUThrottle(percent: Int) {
        throttle.kick = { [weak self] in self?.run.kickAll() }
        throttle.set(percent: percent)
    }

    // MARK: State sections

    /// vCPU n's state travels as section `cpu<n>`, n = 0..<vcpuCount.
    static func vcpuSection(_ index: Int) -> String { "cpu\(index)" }
    static let vmSection = "kvm-vm"
    /// The vCPU sections' version rule, as devices have theirs (DeviceState.swift): this build
    /// writes `vcpuStateVersion` and reads `vcpuStateMinimumVersion` on. The fields are the
    /// same in both; what differs is which MSRs the MSR field may hold (`StateMSRs`):
    /// - 1: only those KVM_GET_MSR_INDEX_LIST names. Its vCPUs get their power-on MTRRs
    ///   (MTRRdefType = write-back, enabled), which their builds never saved.
    /// - 2: also the MTRRs (MTRRdefType, the variable pairs MTRRcap counts, the fixed ranges)
    ///   where the section's CPUID has MTRR; saved by name, as QEMU does, since KVM does not
    ///   list them. A build that reads only 1 refuses a 2 by its version, before any MSR.
    static let vcpuStateVersion: UInt32 = 2
    static let vcpuStateMinimumVersion: UInt32 = 1
    static let vcpuStateVersionWithMTRRs: UInt32 = 2
    static let vmStateVersion: UInt32 = 1

    /// Devices first, then every vCPU, then VM-wide state (kvm-state.md's save order).
    public func saveState() throws -> MachineState {
        try run.withParked {
            var sections = devices.saveSections()
            let (stateMSRs, xsaveSize) = (self.stateMSRs, self.xsaveSize)
            for vcpu in vcpus {
                let cpu = try MachineError.during("save the vCPU state", vcpu: vcpu.index) {
                    try vcpu.perform { try $0.captureState(msrs: stateMSRs, xsaveSize: xsaveSize) }
                }
                sections.append(StateSection(name: Self.vcpuSection(vcpu.index), version: Self.vcpuStateVersion,
                                             bytes: Self.encode(cpu.encodedFields())))
            }
            let vmState = try MachineError.during("save the VM state (irqchip, PIT, clock)") { try vm.captureState() }
            sections.append(StateSection(name: Self.vmSection, version: Self.vmStateVersion, bytes: Self.encode(vmState.encodedFields())))
            return MachineState(sections: sections)
        }
    }

    /// Every vCPU, then the VM, then devices (kvm-state.md's restore order); every section is
    /// decoded and checked before anything is applied.
    public func loadState(_ state: MachineState) throws {
        var byName: [String: StateSection] = [:]
        for s in state.sections {
            guard byName[s.name] == nil else { throw MachineError.stateMismatch(section: s.name, detail: "appears twice") }
            byName[s.name] = s
        }
        let cpuNames = vcpus.map { Self.vcpuSection($0.index) }
        let expected = devices.sectionNames + cpuNames + [Self.vmSection]
        if let unknown = state.sections.first(where: { !expected.contains($0.name) }) {
            throw MachineError.unexpectedStateSection(unknown.name)
        }
        func section(_ name: String) throws -> StateSection {
            guard let found = byName[name] else { throw MachineError.missingStateSection(name) }
            return found
        }
        let cpuSections = try cpuNames.map(section), vmSection = try section(Self.vmSection)
        try Self.checkVersion(vmSection, readable: Self.vmStateVersion...Self.vmStateVersion)
        var cpus: [VCPUState] = []
        for s in cpuSections {
            try Self.checkVersion(s, readable: Self.vcpuStateMinimumVersion...Self.vcpuStateVersion)
            var cpu: VCPUState
            do {
                cpu = try VCPUState(fields: Self.decode(s.bytes, section: s.name))
            } catch let e as StateFieldError {
                throw MachineError.unreadableState(section: s.name, cause: ErrorCause(e))
            }
            let carriesMTRRs = s.version >= Self.vcpuStateVersionWithMTRRs
            try checkFits(cpu, msrs: carriesMTRRs ? stateMSRs : stateMSRs.withoutMTRRs, section: s.name)
            if !carriesMTRRs && MTRR.advertised(in: cpu.cpuid) { cpu.msrs += PowerOnMSRs.mtrrs(stateMSRs.mtrrs) }
            cpus.append(cpu)
        }
        let vmState: VMState
        do {
            vmState = try VMState(fields: Self.decode(vmSection.bytes, section: vmSection.name))
        } catch let e as StateFieldError {
            throw MachineError.unreadableState(section: vmSection.name, cause: ErrorCause(e))
        }
        let restoreDevices = try devices.prepareLoad(byName)
        var trace = SwitchoverTrace(side: "machine")
        try run.withParked {
            trace.mark("load-state-park")
            for (vcpu, cpu) in zip(vcpus, cpus) {
                try MachineError.during("restore the vCPU state", vcpu: vcpu.index) {
                    try vcpu.perform { vcpu in
                        let localKHz = try vcpu.tscKHz()
                        if cpu.tscKHz != 0, localKHz != cpu.tscKHz,
                           abs(Int(localKHz) - Int(cpu.tscKHz)) * 1_000_000 / Int(cpu.tscKHz) > 250 {
                            try vcpu.setTSCKHz(cpu.tscKHz)
                        }
                        // The destination's vCPUs have not run yet, so KVM still takes the source's CPUID.
                        try vcpu.restore(cpu, settingCPUID: true)
                    }
                }
            }
            trace.mark("load-state-vcpus")
            try MachineError.during("restore the VM state (irqchip, PIT, clock)") { try vm.restore(vmState) }
            forgetClockAtStop()
            trace.mark("load-state-vm")
            restoreDevices()
            trace.mark("load-state-devices")
        }
    }

    static func checkVersion(_ section: StateSection, readable: ClosedRange<UInt32>) throws {
        guard readable.contains(section.version) else {
            throw MachineError.unreadableState(section: section.name, cause: ErrorCause(
                StateDecodingError.unsupportedVersion(version: section.version, readable: readable)))
        }
    }

    /// A received vCPU's state must fit this host's vCPU (XSAVE size, MSRs); per vCPU.
    func checkFits(_ cpu: VCPUState, msrs: StateMSRs, section: String) throws {
        do {
            try cpu.checkFits(xsaveSize: xsaveSize, msrs: msrs)
        } catch let e as StateFieldError {
            throw MachineError.unreadableState(section: section, cause: ErrorCause(e))
        }
    }

    /// Fields as (tag u32, length u32, bytes), little-endian.
    static func encode(_ fields: [(tag: UInt32, bytes: [UInt8])]) -> [UInt8] {
        var w = ByteWriter(reservingCapacity: fields.reduce(0) { $0 + 8 + $1.bytes.count })
        for f in fields {
            w.write(f.tag)
            w.writeBytes(f.bytes)
        }
        return w.bytes
    }

    static func decode(_ bytes: [UInt8], section: String) throws -> [(tag: UInt32, bytes: [UInt8])] {
        var r = ByteReader(bytes)
        var fields: [(tag: UInt32, bytes: [UInt8])] = []
        do {
            while r.remaining > 0 {
                guard fields.count < 64 else { throw MachineError.stateMismatch(section: section, detail: "too many fields") }
                let tag = try r.read(UInt32.self, field: "field tag")
                fields.append((tag, try r.readBytes(maximumCount: VCPUState.maxXSAVEBytes, field: "field \(tag)")))
            }
        } catch let e as StateDecodingError {
            throw MachineError.unreadableState(section: section, cause: ErrorCause(e))
        }
        return fields
    }
}
