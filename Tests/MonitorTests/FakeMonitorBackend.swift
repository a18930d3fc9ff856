import Machine
@testable import Monitor

/// A machine made of a byte array: RAM at guest-physical 0, the same bytes seen at
/// `virtualBase` through a pretend identity-plus-offset page table.
final class FakeMonitorBackend: MonitorBackend {
    struct OutsideRAM: Error, CustomStringConvertible {
        var address: UInt64
        var description: String { "address 0x\(String(address, radix: 16)) is not in RAM" }
    }
    struct Refused: Error, CustomStringConvertible {
        var description: String { "refused by the fake" }
    }

    static let virtualBase: UInt64 = 0xffff_8000_0000_0000

    var ram: [UInt8]
    var runState: RunState = .running
    var registersByCPU: [CPURegisters]
    var threadIDs: [Int]
    var log: [String] = []
    var largestRead = 0
    var refuseCont = false

    init(ramSize: Int = 1 << 20, cpuCount: Int = 1) {
        // A recognisable pattern, copied in doubling blocks: a per-byte closure is slow in debug builds.
        ram = [UInt8](repeating: 0, count: ramSize)
        for index in 0..<min(256, ramSize) { ram[index] = UInt8(truncatingIfNeeded: index &* 7 &+ 3) }
        var filled = min(256, ramSize)
        while filled < ramSize {
            let count = min(filled, ramSize - filled)
            ram.replaceSubrange(filled..<filled + count, with: ram[0..<count])
            filled += count
        }
        registersByCPU = Array(repeating: CPURegisters(), count: cpuCount)
        threadIDs = (0..<cpuCount).map { 1234 + $0 }
    }

    func stop() throws { log.append("stop"); runState = .paused(nil) }
    func cont(force: Bool) throws {
        if refuseCont && !force { throw Refused() }
        log.append("cont force=\(force)"); runState = .running
    }
    func systemReset() throws { log.append("reset") }
    func systemPowerdown() throws { log.append("powerdown") }
    func requestQuit() { log.append("quit") }

    var halted: [Bool] = []
    func cpus() -> [CPUInfo] {
        threadIDs.enumerated().map { CPUInfo(index: $0, threadID: $1, halted: halted.indices.contains($0) && halted[$0]) }
    }

    func registers(cpu: Int) throws -> CPURegisters {
        guard registersByCPU.indices.contains(cpu) else { throw Refused() }
        return registersByCPU[cpu]
    }

    func readPhysical(_ address: UInt64, count: Int) throws -> [UInt8] {
        largestRead = max(largestRead, count)
        let (end, overflow) = address.addingReportingOverflow(UInt64(count))
        guard !overflow, end <= UInt64(ram.count) else { throw OutsideRAM(address: address) }
        return Array(ram[Int(address)..<Int(end)])
    }

    func readVirtual(_ address: UInt64, count: Int, cpu: Int) throws -> [UInt8] {
        guard address >= Self.virtualBase else { throw OutsideRAM(address: address) }
        return try readPhysical(address - Self.virtualBase, count: count)
    }

    func poke(_ address: Int, _ bytes: [UInt8]) {
        ram.replaceSubrange(address..<address + bytes.count, with: bytes)
    }
}
