import Devices
import Glibc
import KVM
import SystemSupport

/// The PC devices this machine emulates, behind one port bus, one MMIO bus and one lock: the
/// vCPU thread dispatches guest I/O here while console threads feed host input to the UART.
/// Everything the machine does with devices (bus registration, migration sections, the layout,
/// reset) loops over `all`; adding a device is a file in Sources/Devices and a line there.
final class PlatformDevices: VCPUExitHandler, GuestConsole {
    let portBus: PortBus
    let mmioBus: MMIOBus
    /// The console UART, kept apart because host input goes to it.
    let serial: Serial16550
    /// The ACPI PM registers, kept apart because the host presses the power button on them.
    let pm: ACPIPM
    /// Every device, in migration save order.
    let all: [Device]
    let lock = Mutex()

    /// Guest serial output goes into this pipe; the console back end reads the other end.
    let outputReadFD: Int32
    private let outputWriteFD: Int32

    /// Where device events go; the machine fills these in after construction.
    final class Callbacks {
        /// A device's interrupt output; the machine forwards it to the in-kernel irqchip.
        var setIRQLine: (_ irq: UInt32, _ level: Bool) -> Void = { _, _ in }
        var onReset: () -> Void = {}
        /// The guest entered ACPI S5 (soft-off).
        var onPowerOff: () -> Void = {}
        var onDebugExit: (Int32) -> Void = { _ in }
        var log: (String) -> Void = { _ in }
    }
    let callbacks = Callbacks()

    init(debugExitPorts: MachineConfiguration.DebugExitPorts?) throws {
        (outputReadFD, outputWriteFD) = try MachineError.during("create the guest console's pipe") { try FileIO.makePipe() }
        let callbacks = self.callbacks
        portBus = PortBus(onUnknownPort: { port, isWrite in
            callbacks.log("swiftkvm: guest \(isWrite ? "wrote to" : "read from") unknown I/O port 0x\(String(port, radix: 16)) (reported once per port)")
        })
        mmioBus = MMIOBus(onUnknownAddress: { address, isWrite in
            callbacks.log("swiftkvm: guest \(isWrite ? "wrote to" : "read from") unmapped memory at 0x\(String(address, radix: 16)) (reads return all ones; reported once per page)")
        })
        let consoleFD = outputWriteFD
        let serial = Serial16550(
            // A full pipe means the console reader has fallen 64 KiB behind: the byte is lost,
            // as on a real line nobody listens to, rather than stalling the vCPU.
            onTransmit: { byte in var b = byte; _ = write(consoleFD, &b, 1) },
            onInterruptLine: { level in callbacks.setIRQLine(Serial16550.com1IRQ, level) })
        self.serial = serial
        let pm = ACPIPM(onSCI: { level in callbacks.setIRQLine(ACPIPM.sciIRQ, level) },
                        onSleep: { type in if type == ACPIPM.sleepTypeS5 { callbacks.onPowerOff() } })
        self.pm = pm
        var devices: [Device] = [
            serial,
            I8042(onReset: { callbacks.onReset() }, onInterrupt: { irq, level in callbacks.setIRQLine(irq, level) }),
            CMOS(),
            IgnoredPort(),
            pm,
        ]
        if let ports = debugExitPorts {
            devices.append(DebugExit(base: ports.base, count: ports.count, onExit: { status in callbacks.onDebugExit(status) }))
        }
        all = devices
        for device in all {
            if let device = device as? PortDevice { try portBus.register(device) }
            if let device = device as? MMIODevice { try mmioBus.register(device) }
        }
    }

    deinit {
        close(outputReadFD)
        close(outputWriteFD)
    }

    /// Device entries for the migration layout check ("serial0@0x3f8"): port devices by their
    /// lowest port, then MMIO devices by their lowest address, so the order never depends on
    /// the order of `all`.
    var layoutNames: [String] {
        let listed = Set(all.filter(\.inMigrationLayout).map(\.name))
        var seen = Set<String>()
        // Each bus lists its ranges by address, so a device's first range is its lowest.
        return (portBus.ranges + mmioBus.ranges)
            .filter { listed.contains($0.device) && seen.insert($0.device).inserted }
            .map { "\($0.device)@0x\(String($0.base, radix: 16))" }
    }

    // MARK: GuestConsole

    var guestOutputFD: Int32 { outputReadFD }

    func sendToGuest(_ bytes: ArraySlice<UInt8>) -> Int {
        lock.withLock { serial.receive(bytes) }
    }

    // MARK: VCPUExitHandler (called on the vCPU thread)

    func portRead(port: UInt16, size: Int) -> UInt32 {
        lock.withLock { portBus.read(port: port, size: size) }
    }

    func portWrite(port: UInt16, size: Int, value: UInt32) {
        lock.withLock { portBus.write(port: port, size: size, value: value) }
    }

    func mmioRead(address: UInt64, size: Int) -> UInt64 {
        lock.withLock { mmioBus.read(address: address, size: size) }
    }

    func mmioWrite(address: UInt64, size: Int, value: UInt64) {
        lock.withLock { mmioBus.write(address: address, size: size, value: value) }
    }

    // MARK: State

    /// Fresh devices, as at power-on; keeps the same wiring.
    func reset() {
        lock.withLock { for device in all { device.reset() } }
    }

    /// The ACPI power button (system_powerdown).
    func pressPowerButton() {
        lock.withLock { pm.pressPowerButton() }
    }

    /// One section per device with state, named after the device.
    func saveSections() -> [StateSection] {
        lock.withLock {
            all.compactMap { device in
                device.saveState().map { StateSection(name: device.name, version: $0.version, bytes: $0.bytes) }
            }
        }
    }

    /// The sections a complete machine state carries for these devices.
    var sectionNames: [String] { all.filter { $0.readableStateVersions != nil }.map(\.name) }

    /// Decodes and checks one section per device with state, changing nothing; the returned
    /// closure applies them all.
    func prepareLoad(_ sections: [String: StateSection]) throws -> () -> Void {
        var apply: [() -> Void] = []
        for device in all where device.readableStateVersions != nil {
            guard let section = sections[device.name] else { throw MachineError.missingStateSection(device.name) }
            do {
                apply.append(try device.prepareRestore(VersionedState(version: section.version, bytes: section.bytes)))
            } catch let e as DeviceStateError {
                throw MachineError.unreadableState(section: section.name, cause: ErrorCause(e.cause))
            }
        }
        return { [lock] in lock.withLock { for restore in apply { restore() } } }
    }
}
