import Machine

/// One vCPU as `info cpus` lists it.
public struct CPUInfo: Equatable, Sendable {
    public var index: Int
    public var threadID: Int
    /// Halted in the guest, or an AP still waiting for its start-up IPI.
    public var halted: Bool
    public init(index: Int, threadID: Int, halted: Bool = false) {
        self.index = index; self.threadID = threadID; self.halted = halted
    }
}

/// The machine as the monitor's commands see it. The command line wires a `Machine` in;
/// tests use a fake with plain memory.
public protocol MonitorBackend: AnyObject {
    var runState: RunState { get }
    func stop() throws
    /// Resumes the guest. Refused after a completed outgoing migration unless `force`.
    func cont(force: Bool) throws
    func systemReset() throws
    /// Presses the guest's ACPI power button (QEMU's system_powerdown).
    func systemPowerdown() throws
    /// Ends the process after the monitor returns (QEMU's `quit`).
    func requestQuit()

    func cpus() -> [CPUInfo]
    func registers(cpu: Int) throws -> CPURegisters
    /// Reads guest-physical memory; throws when any byte lies outside RAM.
    func readPhysical(_ address: UInt64, count: Int) throws -> [UInt8]
    /// Reads guest-virtual memory through the vCPU's page tables.
    func readVirtual(_ address: UInt64, count: Int, cpu: Int) throws -> [UInt8]
}
