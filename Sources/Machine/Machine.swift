import CKVM
import Devices
import Glibc
import KVM
import SystemSupport

/// A KVM virtual machine: guest RAM, its vCPUs (one thread each), the in-kernel irqchip and
/// PIT, and the emulated PC devices. Thread-safe: the monitor, consoles and migration call in
/// from their own threads, and guest events arrive on the vCPU threads.
public final class Machine {
    public let configuration: MachineConfiguration
    let kvm: KVMSystem
    let vm: VirtualMachine
    public let memory: GuestMemory
    let devices: PlatformDevices
    /// The run state and the vCPUs, vCPU 0 first (the boot CPU).
    let run: RunControl
    var vcpus: [VCPUThread] { run.vcpus }
    private let image: BootImage

    /// Captured right after boot setup, one per vCPU; `system_reset` restores these.
    private(set) var bootVCPUStates: [VCPUState] = []
    private var bootVMState = VMState()
    /// Which MSRs a vCPU's state holds (KVM's list, and the MTRRs where CPUID has MTRR).
    let stateMSRs: StateMSRs
    let xsaveSize: Int

    let dirty = DirtyTracking()
    let throttle = CPUThrottle()
    /// Set by a completed live migration: the guest runs on the destination now.
    private let handOff = Mutex()
    private var guestRunsElsewhere = false
    /// kvmclock as it read when `pause` stopped the running guest, for `resume` (guarded by
    /// `handOff`). As in QEMU, a stopped guest's clock stands still and KVM_KVMCLOCK_CTRL tells
    /// it that it was stopped, so a long `stop` neither jumps its clock nor reads as a soft
    /// lockup. Cleared where the clock is set anew (loading state, reset).
    private var clockAtStop: kvm_clock_data?

    // Guest exit and power-off are decisions, not news: one owner (the command line) says
    // how the process ends, so they are single handlers; the others are observer lists.

    /// The guest wrote to isa-debug-exit: the process should end with this status.
    public var onGuestExit: (Int32) -> Void = { exit($0) }
    /// Diagnostics for the user (unknown ports, triple faults, internal errors).
    public var log: (String) -> Void = { fputs($0 + "\n", stderr) } {
        didSet { devices.callbacks.log = log }
    }
    /// The guest powered itself off through ACPI (S5); QEMU ends the process then, and so
    /// does the command line. Called on the vCPU thread, after the vCPU is stopped.
    public var onGuestPowerOff: () -> Void = { exit(0) }
    /// Told when the guest reset itself (keyboard-controller reset line or a KVM reset event),
    /// on a vCPU thread after the machine has booted again.
    public let guestResetObservers = ObserverList<Void>()
    /// Told of every run-state change (QMP's STOP/RESUME/SHUTDOWN events listen here), on the
    /// thread that made it.
    public var runStateObservers: ObserverList<RunState> { run.stateObservers }

    public init(configuration: MachineConfiguration) throws {
        self.configuration = configuration
        guard configuration.memorySize % 4096 == 0 else { throw MachineError.memorySizeNotPageAligned(configuration.memorySize) }
        let count = configuration.vcpuCount
        var trace = SwitchoverTrace(side: "startup")
        do {
            kvm = try KVMSystem()
            // The MADT and CPUID give 8-bit xAPIC IDs, and 0xFF is the broadcast ID.
            let maximum = min(kvm.maxVCPUs, ACPITables.maxVCPUCount)
            guard count >= 1, count <= maximum else {
                throw MachineError.unsupportedVCPUCount(requested: count, maximum: maximum)
            }
        } catch let e as KVMError {
            throw MachineError.kvm(e, action: "start the machine")
        }
        do {
            // Kernels find the IOAPIC, every vCPU and the power button through ACPI.
            var firmware: FirmwareTables?
            if case .kernel = configuration.boot { firmware = ACPITables.build(vcpuCount: count) }
            image = try BootImage(configuration.boot, ramSize: configuration.memorySize, firmware: firmware)
        } catch let e as BootError {
            throw MachineError.boot(e)
        }
        trace.mark("open-kvm-read-image")
        do {
            vm = try kvm.createVM()
            try vm.setUpX86Platform()
            dirty.manualProtect = vm.enableManualDirtyLogProtect()
            let layout = RAMLayout.ranges(forSize: configuration.memorySize)
            memory = try GuestMemory(layout: layout.map { ($0.guestAddress, Int($0.size)) }, backing: configuration.memfdRAM ? .memfd : .anonymous)
            for region in memory.regions { try vm.setMemoryRegion(region, logDirtyPages: false) }
            // An incoming snapshot may bring its own pages (mapped-ram); it preallocates then.
            if configuration.preallocateRAM && !configuration.incoming && !memory.populate() {
                throw KVMError.systemCall(name: "madvise(MADV_POPULATE_WRITE) for -mem-prealloc", errno: errno)
            }
            trace.mark("create-vm-and-ram")
            devices = try PlatformDevices(debugExitPorts: configuration.debugExit)
            let supported = try kvm.supportedCPUID()
            let tscDeadline = kvm.checkExtension(Int32(KVM_CAP_TSC_DEADLINE_TIMER)) > 0
            let hostBrand = KVMSystem.hostBrandLeaves()
            var threads: [VCPUThread] = []
            // KVM creates every vCPU but the first in the wait-for-SIPI state
            // (KVM_MP_STATE_UNINITIALIZED, given the in-kernel irqchip): the guest starts
            // them with INIT and SIPI through its local APIC, as on real hardware.
            for index in 0..<count {
                let vcpu = try MachineError.during("create the vCPU", vcpu: index) { [vm] in
                    let vcpu = try vm.createVCPU(id: index)
                    let guest = GuestCPUID.build(supported: supported, tscKHz: (try? vcpu.tscKHz()) ?? 0,
                                                 tscDeadlineTimer: tscDeadline, hostBrand: hostBrand)
                    try vcpu.setCPUID(CPUIDTopology(vcpuIndex: index, vcpuCount: count).apply(to: guest))
                    return vcpu
                }
                threads.append(VCPUThread(vcpu: vcpu, handler: devices))
            }
            trace.mark("create-vcpus")
            run = RunControl(vcpus: threads,
                             initialState: configuration.incoming ? .paused(.inmigrate) : .paused(.prelaunch))
            let msrs = try Self.stateMSRs(kvm: kvm, vcpu: threads[0].vcpu)
            stateMSRs = msrs
            for thread in threads {
                let vcpu = thread.vcpu
                try MachineError.during("set the power-on MSRs", vcpu: thread.index) {
                    try vcpu.setMSRs(PowerOnMSRs.entries(cpuid: try vcpu.getCPUID(), mtrrs: msrs.mtrrs,
                                                         kvmMiscEnable: try vcpu.getMSRs([PowerOnMSRs.miscEnable]).first?.value))
                }
            }
            xsaveSize = Int(kvm.checkExtension(Int32(KVM_CAP_XSAVE2)))
        } catch let e as KVMError {
            throw MachineError.kvm(e, action: "create the virtual machine")
        } catch let e as SystemCallError {
            throw MachineError.host(e, action: "create the virtual machine")
        }
        wireDevices()
        try MachineError.during("set the boot CPU's registers", vcpu: 0) { try setBootRegisters(vcpus[0].vcpu) }
        let (stateMSRs, xsaveSize) = (self.stateMSRs, self.xsaveSize)
        for vcpu in vcpus {
            bootVCPUStates.append(try MachineError.during("capture the power-on state", vcpu: vcpu.index) {
                try vcpu.vcpu.captureState(msrs: stateMSRs, xsaveSize: xsaveSize)
            })
        }
        bootVMState = try MachineError.during("capture the power-on state") { try vm.captureState() }
        trace.mark("capture-power-on-state")
        if !configuration.incoming {
            try MachineError.during("load the boot image into guest RAM") { try image.load(into: memory) }
        }
        trace.mark("load-image")
        for vcpu in vcpus {
            try MachineError.during("start the vCPU thread", vcpu: vcpu.index) { try vcpu.start(delegate: self) }
        }
    }

    /// KVM's MSR list and the MTRRs that MTRRcap counts (KVM answers MTRRcap on every vCPU).
    private static func stateMSRs(kvm: KVMSystem, vcpu: VCPU) throws -> StateMSRs {
        let capability = try vcpu.getMSRs([MTRR.capabilityMSR]).first?.value
        return StateMSRs(listed: try kvm.msrIndexList(), mtrrs: capability.map(MTRR.stateMSRs) ?? [])
    }

    private func wireDevices() {
        let vm = self.vm
        devices.callbacks.setIRQLine = { irq, level in try? vm.setIRQLine(irq, level: level) }
        devices.callbacks.onPowerOff = { [unowned self] in self.guestPoweredOff() }
        // On a vCPU thread, inside KVM_RUN's exit handling: the access finishes first.
        devices.callbacks.onReset = { [unowned self] in self.run.requestReset() }
        devices.callbacks.onDebugExit = { [unowned self] status in self.onGuestExit(status) }
        devices.callbacks.log = log
    }

    /// The boot CPU enters the image; the others wait for the guest's start-up IPIs.
    private func setBootRegisters(_ vcpu: VCPU) throws {
        let base = try vcpu.getSregs()
        let (regs, sregs): (kvm_regs, kvm_sregs)
        switch image.kind {
        case .pvh(let elf, _):
            (regs, sregs) = BootRegisters.pvh(entry: elf.pvhEntry, startInfo: BootImage.startInfoAddress, base: base)
        case .linux:
            (regs, sregs) = BootRegisters.linux64(entry: image.entryPoint, bootParams: BootImage.bootParamsAddress,
                                                  stack: BootImage.linuxStackPointer, base: base)
        case .bootSector:
            (regs, sregs) = BootRegisters.bootSector(base: base)
        }
        try vcpu.setSregs(sregs)
        try vcpu.setRegs(regs)
    }

    // MARK: Running and stopping

    public var runState: RunState { run.runState }

    /// Lets the guest run (after boot, unless started paused).
    public func start() { run.setState(.running) }

    public func pause(reason: PauseReason?) throws {
        let wasRunning = runState == .running
        run.pause(reason: reason)
        guard wasRunning, let reading = try? vm.clock() else { return }
        handOff.withLock { if clockAtStop == nil { clockAtStop = reading } }
    }

    public func resume() throws {
        if let reading = handOff.withLock({ () -> kvm_clock_data? in
            defer { clockAtStop = nil }
            return clockAtStop
        }) {
            try restartClock(from: reading)
        }
        run.setState(.running)
    }

    /// The clock continues from where it stood at `pause` (no wall-clock catch-up: the guest
    /// was stopped, not migrated), and every vCPU's kvmclock says so.
    private func restartClock(from reading: kvm_clock_data) throws {
        var stopped = reading
        stopped.flags = 0
        try MachineError.during("restart the guest's clock") {
            try run.withParked {
                try vm.setClock(stopped)
                for vcpu in vcpus { _ = try vcpu.perform { try $0.markClockPaused() } }
            }
        }
    }

    /// Loading state or resetting sets the clock itself; a clock saved at `pause` is stale then.
    func forgetClockAtStop() { handOff.withLock { clockAtStop = nil } }

    public func setPausedReason(_ reason: PauseReason?) { run.setPausedReason(reason) }

    public func markMigrated(guestRunsElsewhere: Bool) {
        handOff.withLock { self.guestRunsElsewhere = guestRunsElsewhere }
        run.setPausedReason(.postmigrate)
    }

    /// The monitor's `cont`: refuses where resuming would be wrong, unless forced.
    public func cont(force: Bool) throws {
        switch runState {
        case .running: return
        case .paused(.postmigrate?) where !force && handOff.withLock({ guestRunsElsewhere }):
            throw MachineError.refusedAfterMigration
        case .paused(.inmigrate?): throw MachineError.waitingForIncomingMigration
        case .paused(let reason?) where reason == .shutdown || reason == .internalError || reason == .guestPanicked:
            throw MachineError.guestStopped(reason: reason.rawValue)
        default: try resume()
        }
    }

    /// Boots the guest again from its image, as after power-on. RAM is cleared, so guests
    /// that check memory (dirty) start over consistently.
    public func systemReset() throws {
        try run.withParked { try performReset() }
        switch runState {
        case .paused(.shutdown?), .paused(.internalError?), .paused(.guestPanicked?): start()
        default: break
        }
    }

    /// Every vCPU parked. Each vCPU gets back its power-on state (the APs wait for SIPI again).
    private func performReset() throws {
        try MachineError.during("return guest RAM to zero for the reset") { try memory.discardAll() }
        try MachineError.during("reload the boot image for the reset") { try image.load(into: memory) }
        dirty.markAll(memory)
        // Real KVM refuses CPUID changes once a vCPU has run, and the CPUID never changed.
        for (vcpu, state) in zip(vcpus, bootVCPUStates) {
            try MachineError.during("restore the power-on state", vcpu: vcpu.index) {
                try vcpu.perform { try $0.restore(state, settingCPUID: false) }
            }
        }
        try MachineError.during("restore the power-on state") { try vm.restore(bootVMState) }
        forgetClockAtStop()
        devices.reset()
    }

    /// QEMU's system_powerdown: presses the ACPI power button; a guest that listens shuts
    /// down (and powers off through S5).
    public func systemPowerdown() {
        devices.pressPowerButton()
    }

    /// On a vCPU thread, inside the PM1 control write: stops every vCPU first so that no more
    /// guest code runs, then reports.
    private func guestPoweredOff() {
        run.setState(.paused(.shutdown))
        log("swiftkvm: the guest powered off")
        onGuestPowerOff()
    }

    /// On the vCPU thread that reports `exit`: the decision applies to the whole machine.
    private func exitDecision(_ exit: VCPUExit, on vcpu: VCPU) -> (state: RunState, message: String)? {
        let cpu = configuration.vcpuCount > 1 ? " on CPU #\(vcpu.id)" : ""
        switch exit {
        case .interrupted, .halted:
            return nil
        case .shutdown:
            return (.paused(.shutdown),
                    "swiftkvm: the guest triple-faulted\(cpu) (KVM_EXIT_SHUTDOWN) and is stopped; system_reset boots it again")
        case .systemEvent(let type):
            switch Int32(type) {
            case KVM_SYSTEM_EVENT_RESET:
                return nil
            case KVM_SYSTEM_EVENT_CRASH:
                return (.paused(.guestPanicked), "swiftkvm: the guest reported a crash\(cpu)")
            default:
                return (.paused(.shutdown), "swiftkvm: the guest powered off")
            }
        case .internalError(let suberror, let data):
            let detail = suberror == UInt32.max ? "KVM_RUN failed" : "KVM internal error, suberror \(suberror), data \(data.map { "0x" + String($0, radix: 16) })"
            return (.paused(.internalError), "swiftkvm: \(detail)\(cpu); the guest is stopped\n\(registerSummary(vcpu))")
        case .failedEntry(let reason):
            return (.paused(.internalError),
                    "swiftkvm: KVM could not enter the guest\(cpu) (hardware reason 0x\(String(reason, radix: 16))); the guest is stopped\n\(registerSummary(vcpu))")
        case .unexpected(let reason):
            return (.paused(.internalError), "swiftkvm: unexpected KVM exit \(reason)\(cpu); the guest is stopped\n\(registerSummary(vcpu))")
        }
    }

    private func registerSummary(_ vcpu: VCPU) -> String {
        guard let r = try? vcpu.getRegs(), let s = try? vcpu.getSregs() else { return "(registers unavailable)" }
        func h(_ v: UInt64) -> String { String(v, radix: 16) }
        return "RIP=\(h(r.rip)) RSP=\(h(r.rsp)) RFLAGS=\(h(r.rflags)) CS=\(h(UInt64(s.cs.selector))) CR0=\(h(s.cr0)) CR3=\(h(s.cr3)) CR4=\(h(s.cr4)) EFER=\(h(s.efer))"
    }

    public func shutdownThreads() {
        throttle.stop()
        run.stopThreads()
    }

    // MARK: Console

    public var console: GuestConsole { MachineConsole(devices: devices, runState: { [run] in run.runState }) }
}

extension Machine: VCPUThreadDelegate {
    func vcpuInterrupted(_ vcpu: VCPUThread) {
        if run.takeReset() {
            defer { run.finishReset() }
            do {
                try run.withParked { try performReset() }
                guestResetObservers.publish(())
            } catch {
                log("swiftkvm: reset failed: \(error)")
            }
        }
        throttle.sleepIfThrottled()
    }

    func vcpuExited(_ vcpu: VCPUThread, _ exit: VCPUExit) {
        if exit == .systemEvent(type: UInt32(KVM_SYSTEM_EVENT_RESET)) {
            run.requestReset()
            vcpuInterrupted(vcpu)
            return
        }
        // The state first, so that whoever reads the message sees it in place.
        guard let decision = exitDecision(exit, on: vcpu.vcpu) else { return }
        run.setState(decision.state)
        log(decision.message)
    }
}
