import Devices
import Glibc
import KVM

/// The PC devices this machine emulates, behind one port bus and one lock: the vCPU thread
/// dispatches guest port I/O here while console threads feed host input to the UART.
final class PlatformDevices: VCPUExitHandler, GuestConsole {
    let bus: PortBus
    private(set) var serial: Serial16550!
    private(set) var i8042: I8042!
    private(set) var cmos: CMOS!
    private(set) var pm: ACPIPM!
    private(set) var debugExit: DebugExit?
    let lock = ConditionLock()

    /// Guest serial output goes into this pipe; the console back end reads the other end.
    let outputReadFD: Int32
    private let outputWriteFD: Int32
    private(set) var droppedOutputBytes = 0

    private var reportedMMIOPages = Set<UInt64>()
    private static let mmioReportLimit = 16

    /// Where device events go; the machine fills these in after construction.
    final class Callbacks {
        /// A device's interrupt line level (ISA IRQ number); the machine forwards it to the
        /// in-kernel irqchip.
        var setIRQ: (UInt32, Bool) -> Void = { _, _ in }
        var onReset: () -> Void = {}
        /// The guest entered ACPI S5 (soft-off).
        var onPowerOff: () -> Void = {}
        var onDebugExit: (Int32) -> Void = { _ in }
        var log: (String) -> Void = { _ in }
    }
    let callbacks = Callbacks()

    init(debugExitPorts: MachineConfiguration.DebugExitPorts?) throws {
        var fds: [Int32] = [-1, -1]
        guard pipe(&fds) == 0 else {
            throw MachineError.kvm("cannot create the console pipe: \(HostFile.errorText(errno))")
        }
        for fd in fds {
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
            _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        }
        outputReadFD = fds[0]
        outputWriteFD = fds[1]
        let callbacks = self.callbacks
        bus = PortBus(onUnknownPort: { port, isWrite in
            callbacks.log("swiftkvm: guest \(isWrite ? "wrote to" : "read from") unknown I/O port 0x\(String(port, radix: 16)) (reported once per port)")
        })
        serial = Serial16550(onTransmit: { [unowned self] byte in self.transmit(byte) },
                             onInterruptLine: { level in callbacks.setIRQ(Serial16550.com1IRQ, level) })
        i8042 = I8042(onReset: { callbacks.onReset() }, onInterrupt: { irq, level in callbacks.setIRQ(irq, level) })
        cmos = CMOS()
        pm = ACPIPM(onSCI: { level in callbacks.setIRQ(ACPIPM.sciIRQ, level) },
                    onSleep: { type in if type == ACPIPM.sleepTypeS5 { callbacks.onPowerOff() } })
        try bus.register(serial, name: "serial0", base: Serial16550.com1Base, count: Serial16550.portCount)
        try bus.register(i8042, name: "i8042", base: 0x60, count: 5)
        try bus.register(cmos, name: "cmos", base: 0x70, count: 2)
        try bus.register(IgnoredPort(), name: "post", base: 0x80, count: 1)
        try bus.register(pm, name: "acpi-pm", base: ACPIPM.base, count: ACPIPM.portCount)
        if let ports = debugExitPorts {
            let device = DebugExit(base: ports.base, count: ports.count, onExit: { status in callbacks.onDebugExit(status) })
            try bus.register(device, name: "isa-debug-exit", base: ports.base, count: ports.count)
            debugExit = device
        }
    }

    deinit {
        close(outputReadFD)
        close(outputWriteFD)
    }

    /// Device names for the migration layout check, in a stable order.
    var layoutNames: [String] {
        bus.devices.filter { $0.name != "post" }.map { "\($0.name)@0x\(String($0.base, radix: 16))" }
    }

    private func transmit(_ byte: UInt8) {
        var b = byte
        if write(outputWriteFD, &b, 1) != 1 { droppedOutputBytes += 1 }
    }

    // MARK: GuestConsole

    var guestOutputFD: Int32 { outputReadFD }

    func sendToGuest(_ bytes: ArraySlice<UInt8>) -> Int {
        lock.withLock { serial.receive(bytes) }
    }

    // MARK: VCPUExitHandler (called on the vCPU thread)

    func portRead(port: UInt16, size: Int) -> UInt32 {
        lock.withLock { bus.read(port: port, size: size) }
    }

    func portWrite(port: UInt16, size: Int, value: UInt32) {
        lock.withLock { bus.write(port: port, size: size, value: value) }
    }

    func mmioRead(address: UInt64, size: Int) -> UInt64 {
        reportMMIO(address, isWrite: false)
        return size >= 8 ? UInt64.max : (1 << (UInt64(size) * 8)) - 1
    }

    func mmioWrite(address: UInt64, size: Int, value: UInt64) {
        reportMMIO(address, isWrite: true)
    }

    private func reportMMIO(_ address: UInt64, isWrite: Bool) {
        let page = address >> 12
        guard reportedMMIOPages.count < Self.mmioReportLimit, reportedMMIOPages.insert(page).inserted else { return }
        callbacks.log("swiftkvm: guest \(isWrite ? "wrote to" : "read from") unmapped memory at 0x\(String(address, radix: 16)) (reads return all ones; reported once per page)")
    }

    // MARK: State

    /// Fresh devices, as at power-on; keeps the same wiring.
    func reset() {
        lock.withLock {
            serial.restore(SerialState())
            i8042.restore(I8042State())
            cmos.restore(CMOSState())
            pm.restore(ACPIPMState())
        }
    }

    /// The ACPI power button (system_powerdown).
    func pressPowerButton() {
        lock.withLock { pm.pressPowerButton() }
    }

    func saveSections() -> [StateSection] {
        lock.withLock {
            [StateSection(name: "serial0", version: SerialState.stateVersion, bytes: serial.state.encoded()),
             StateSection(name: "i8042", version: I8042State.stateVersion, bytes: i8042.state.encoded()),
             StateSection(name: "cmos", version: CMOSState.stateVersion, bytes: cmos.state.encoded()),
             StateSection(name: "acpi-pm", version: ACPIPMState.stateVersion, bytes: pm.state.encoded())]
        }
    }

    static let sectionNames = ["serial0", "i8042", "cmos", "acpi-pm"]

    func load(_ section: StateSection) throws {
        do {
            switch section.name {
            case "serial0":
                let s = try SerialState(decoding: section.bytes, version: section.version)
                lock.withLock { serial.restore(s) }
            case "i8042":
                let s = try I8042State(decoding: section.bytes, version: section.version)
                lock.withLock { i8042.restore(s) }
            case "cmos":
                let s = try CMOSState(decoding: section.bytes, version: section.version)
                lock.withLock { cmos.restore(s) }
            case "acpi-pm":
                let s = try ACPIPMState(decoding: section.bytes, version: section.version)
                lock.withLock { pm.restore(s) }
            default:
                throw MachineError.unexpectedStateSection(section.name)
            }
        } catch let e as StateDecodingError {
            throw MachineError.stateMismatch(section: section.name, detail: e.description)
        }
    }
}
