import Machine
import Migration
@testable import Monitor

/// The human monitor as the process builds it (built-in, memory-save and migration commands
/// over one MigrationController), on a machine made of 64 KiB of plain memory. Commands
/// that reach outside the process (`migrate` runs `exec:` commands and connects, `pmemsave`
/// and `memsave` write files, `migrate_incoming` listens) keep their argument parsing but
/// their handlers only check the URI or do nothing: an input must never run a shell command
/// or write a file.
enum FuzzMonitor {
    static let outwardCommands: Set<String> = ["migrate", "migrate_incoming", "pmemsave", "memsave"]

    static func interpreter(backend: FuzzBackend, machine: FuzzMachine, controller: MigrationController) -> CommandInterpreter {
        let interpreter = CommandInterpreter(backend: backend)
        let output = DiscardedOutput()
        BackgroundMemorySaves.register(in: interpreter, output: output, waitWithoutDetach: true)
        MigrationCommands.register(in: interpreter, controller: controller, machine: machine, output: output,
                                   waitWithoutDetach: true, startIncoming: { _ = try MigrationURI.parse($0) })
        for name in outwardCommands {
            guard var command = interpreter.command(named: name) else { continue }
            command.handler = { arguments, _ in
                if let uri = try? arguments.string("uri") { _ = try MigrationURI.parse(uri) }
                return ""
            }
            interpreter.register(command)
        }
        interpreter.rules = RunStateRules { [backend, controller] in
            RunStateRules.Situation(runState: backend.runState, outgoingMigration: controller.stats.status.isInProgress)
        }
        return interpreter
    }
}

final class DiscardedOutput: AsyncOutput {
    func printAsync(_ text: String) {}
}

/// 64 KiB of RAM at guest-physical 0, seen at the same addresses virtually; two vCPUs.
final class FuzzBackend: MonitorBackend {
    struct OutsideRAM: Error, CustomStringConvertible {
        var description: String { "Invalid address" }
    }
    static let ramSize = 64 * 1024
    /// Made once: filling it per input would dominate the time of a run.
    private static let ram = (0..<FuzzBackend.ramSize).map { UInt8(truncatingIfNeeded: $0 &* 7) }
    private var ram: [UInt8] { Self.ram }
    private(set) var runState: RunState = .running

    func stop() throws { runState = .paused(nil) }
    func cont(force: Bool) throws { runState = .running }
    func systemReset() throws {}
    func systemPowerdown() throws {}
    func requestQuit() {}
    func cpus() -> [CPUInfo] { [CPUInfo(index: 0, threadID: 100, halted: false), CPUInfo(index: 1, threadID: 101, halted: true)] }
    func registers(cpu: Int) throws -> CPURegisters {
        guard cpu == 0 || cpu == 1 else { throw OutsideRAM() }
        return CPURegisters()
    }
    func readPhysical(_ address: UInt64, count: Int) throws -> [UInt8] {
        let (end, overflow) = address.addingReportingOverflow(UInt64(count))
        guard count >= 0, !overflow, end <= UInt64(ram.count) else { throw OutsideRAM() }
        return Array(ram[Int(address)..<Int(end)])
    }
    func readVirtual(_ address: UInt64, count: Int, cpu: Int) throws -> [UInt8] {
        try readPhysical(address, count: count)
    }
}
