import CKVM
import Devices
import Glibc
import KVM

/// A KVM virtual machine: guest RAM, one vCPU with its thread, the in-kernel irqchip and PIT,
/// and the emulated PC devices. Thread-safe: the monitor, consoles and migration call in from
/// their own threads.
public final class Machine {
    public let configuration: MachineConfiguration
    let kvm: KVMSystem
    let vm: VirtualMachine
    public let memory: GuestMemory
    let vcpu: VCPU
    let devices: PlatformDevices
    let runner: VCPURunner
    private let image: BootImage

    /// Captured right after boot setup; `system_reset` restores these.
    private var bootVCPUState = VCPUState()
    private var bootVMState = VMState()
    let msrIndices: [UInt32]
    let xsaveSize: Int

    let dirty = DirtyTracking()
    let throttle = CPUThrottle()
    private var resetRequested = false
    /// Set by a completed live migration: the guest runs on the destination now.
    private let handOff = ConditionLock()
    private var guestRunsElsewhere = false

    /// The guest wrote to isa-debug-exit: the process should end with this status.
    public var onGuestExit: (Int32) -> Void = { exit($0) }
    /// Diagnostics for the user (unknown ports, triple faults, internal errors).
    public var log: (String) -> Void = { fputs($0 + "\n", stderr) } {
        didSet { devices.callbacks.log = log }
    }
    /// The guest powered itself off through ACPI (S5); QEMU ends the process then, and so
    /// does the command line. Called on the vCPU thread, after the vCPU is stopped.
    public var onGuestPowerOff: () -> Void = { exit(0) }
    /// The guest reset itself (keyboard-controller reset line or a KVM reset event); called on
    /// the vCPU thread after the machine has booted again.
    public var onGuestReset: () -> Void = {}
    public var onStateChange: (RunState) -> Void {
        get { runner.onStateChange }
        set { runner.onStateChange = newValue }
    }

    public init(configuration: MachineConfiguration) throws {
        self.configuration = configuration
        guard configuration.memorySize % 4096 == 0 else { throw MachineError.memorySizeNotPageAligned(configuration.memorySize) }
        do {
            // Kernels find the IOAPIC, every vCPU and the power button through ACPI.
            var firmware: FirmwareTables?
            if case .kernel = configuration.boot { firmware = ACPITables.build(vcpuCount: configuration.vcpuCount) }
            image = try BootImage(configuration.boot, ramSize: configuration.memorySize, firmware: firmware)
        } catch let e as BootError {
            throw MachineError.boot(e)
        }
        do {
            kvm = try KVMSystem()
            vm = try kvm.createVM()
            try vm.setUpX86Platform()
            let layout = RAMLayout.ranges(forSize: configuration.memorySize)
            memory = try GuestMemory(layout: layout.map { ($0.guestAddress, Int($0.size)) })
            for region in memory.regions { try vm.setMemoryRegion(region, logDirtyPages: false) }
            devices = try PlatformDevices(debugExitPorts: configuration.debugExit)
            vcpu = try vm.createVCPU(id: 0)
            let tscDeadline = kvm.checkExtension(Int32(KVM_CAP_TSC_DEADLINE_TIMER)) > 0
            try vcpu.setCPUID(GuestCPUID.build(supported: try kvm.supportedCPUID(), tscKHz: (try? vcpu.tscKHz()) ?? 0,
                                               tscDeadlineTimer: tscDeadline))
            msrIndices = try kvm.msrIndexList()
            xsaveSize = Int(kvm.checkExtension(Int32(KVM_CAP_XSAVE2)))
        } catch let e as KVMError {
            throw MachineError.kvm(e.description)
        }
        runner = VCPURunner(vcpu: vcpu, handler: devices,
                            initialState: configuration.incoming ? .paused(.inmigrate) : .paused(.prelaunch))
        wireDevices()
        do {
            try setBootRegisters()
            bootVCPUState = try vcpu.captureState(msrIndices: msrIndices, xsaveSize: xsaveSize)
            bootVMState = try vm.captureState()
            if !configuration.incoming { try image.load(into: memory) }
            try runner.start()
        } catch let e as KVMError {
            throw MachineError.kvm(e.description)
        }
    }

    private func wireDevices() {
        let vm = self.vm
        devices.callbacks.setIRQ = { irq, level in try? vm.setIRQLine(irq, level: level) }
        devices.callbacks.onPowerOff = { [unowned self] in self.guestPoweredOff() }
        devices.callbacks.onReset = { [unowned self] in
            // On the vCPU thread, inside KVM_RUN's exit handling: finish the access first.
            self.resetRequested = true
            self.vcpu.requestImmediateExit()
        }
        devices.callbacks.onDebugExit = { [unowned self] status in self.onGuestExit(status) }
        devices.callbacks.log = log
        runner.onInterrupted = { [unowned self] in self.vcpuInterrupted() }
        runner.onExit = { [unowned self] exit in self.vcpuExited(exit) }
        runner.report = { [unowned self] message in self.log(message) }
    }

    private func setBootRegisters() throws {
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

    public var runState: RunState { runner.runState }

    /// Lets the guest run (after boot, unless started paused).
    public func start() { runner.setState(.running) }

    public func pause(reason: PauseReason?) throws { runner.pause(reason: reason) }

    public func resume() throws { runner.setState(.running) }

    public func setPausedReason(_ reason: PauseReason?) { runner.setPausedReason(reason) }

    public func markMigrated(guestRunsElsewhere: Bool) {
        handOff.withLock { self.guestRunsElsewhere = guestRunsElsewhere }
        runner.setPausedReason(.postmigrate)
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
        try runner.withParked { try performReset() }
        switch runState {
        case .paused(.shutdown?), .paused(.internalError?), .paused(.guestPanicked?): start()
        default: break
        }
    }

    private func performReset() throws {
        do {
            memory.discardAll()
            try image.load(into: memory)
            dirty.markAll(memory)
            // Real KVM refuses CPUID changes once the vCPU has run, and the CPUID never changed.
            try vcpu.restore(bootVCPUState, settingCPUID: false)
            try vm.restore(bootVMState)
            devices.reset()
        } catch let e as KVMError {
            throw MachineError.kvm(e.description)
        }
    }

    /// QEMU's system_powerdown: presses the ACPI power button; a guest that listens shuts
    /// down (and powers off through S5).
    public func systemPowerdown() {
        devices.pressPowerButton()
    }

    /// On the vCPU thread, inside the PM1 control write: stops the vCPU first so that no more
    /// guest code runs, then reports.
    private func guestPoweredOff() {
        runner.setState(.paused(.shutdown))
        vcpu.requestImmediateExit()
        log("swiftkvm: the guest powered off")
        onGuestPowerOff()
    }

    private func vcpuInterrupted() {
        if resetRequested {
            resetRequested = false
            do {
                try performReset()
                onGuestReset()
            } catch {
                log("swiftkvm: reset failed: \(error)")
            }
        }
        throttle.sleepIfThrottled()
    }

    private func vcpuExited(_ exit: VCPUExit) -> VCPURunner.ExitDecision {
        switch exit {
        case .interrupted, .halted:
            return .init()
        case .shutdown:
            return .init(state: .paused(.shutdown),
                         message: "swiftkvm: the guest triple-faulted (KVM_EXIT_SHUTDOWN) and is stopped; system_reset boots it again")
        case .systemEvent(let type):
            switch Int32(type) {
            case KVM_SYSTEM_EVENT_RESET:
                resetRequested = true
                vcpuInterrupted()
                return .init()
            case KVM_SYSTEM_EVENT_CRASH:
                return .init(state: .paused(.guestPanicked), message: "swiftkvm: the guest reported a crash")
            default:
                return .init(state: .paused(.shutdown), message: "swiftkvm: the guest powered off")
            }
        case .internalError(let suberror, let data):
            let detail = suberror == UInt32.max ? "KVM_RUN failed" : "KVM internal error, suberror \(suberror), data \(data.map { "0x" + String($0, radix: 16) })"
            return .init(state: .paused(.internalError), message: "swiftkvm: \(detail); the guest is stopped\n\(registerSummary())")
        case .failedEntry(let reason):
            return .init(state: .paused(.internalError),
                         message: "swiftkvm: KVM could not enter the guest (hardware reason 0x\(String(reason, radix: 16))); the guest is stopped\n\(registerSummary())")
        case .unexpected(let reason):
            return .init(state: .paused(.internalError), message: "swiftkvm: unexpected KVM exit \(reason); the guest is stopped\n\(registerSummary())")
        }
    }

    private func registerSummary() -> String {
        guard let r = try? vcpu.getRegs(), let s = try? vcpu.getSregs() else { return "(registers unavailable)" }
        func h(_ v: UInt64) -> String { String(v, radix: 16) }
        return "RIP=\(h(r.rip)) RSP=\(h(r.rsp)) RFLAGS=\(h(r.rflags)) CS=\(h(UInt64(s.cs.selector))) CR0=\(h(s.cr0)) CR3=\(h(s.cr3)) CR4=\(h(s.cr4)) EFER=\(h(s.efer))"
    }

    public func shutdownThreads() {
        throttle.stop()
        runner.stopThread()
    }

    // MARK: Console

    public var console: GuestConsole { devices }

    public var vcpuThreadIDs: [Int] { [runner.threadID] }
}
