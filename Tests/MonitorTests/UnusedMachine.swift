import Machine
import Migration

/// A machine the command handlers hold but these tests never migrate: every call refuses.
final class UnusedMachine: MigratableMachine {
    struct NotHere: Error {}
    var layout: MachineLayout { MachineLayout(ramRegions: [], vcpuCount: 1, devices: []) }
    var ramRegions: [GuestRAMRegion] { [] }
    var runState: RunState { .running }
    func pause(reason: PauseReason?) throws { throw NotHere() }
    func resume() throws { throw NotHere() }
    func setPausedReason(_ reason: PauseReason?) {}
    func startDirtyLogging() throws { throw NotHere() }
    func stopDirtyLogging() {}
    func collectDirtyPages() throws -> [[UInt64]] { throw NotHere() }
    var dirtyLogRearmChunkPages: Int? { nil }
    func rearmDirtyLog(region: Int, firstPage: Int, pageCount: Int, bitmap: ArraySlice<UInt64>) throws { throw NotHere() }
    func saveState() throws -> MachineState { throw NotHere() }
    func loadState(_ state: MachineState) throws { throw NotHere() }
    func setCPUThrottle(percent: Int) {}
}
