import Glibc
import Machine

/// The destination the fuzzer loads into: two small RAM regions of plain memory and the
/// layout the seed streams were captured from. It records whether anything was loaded or
/// resumed, which a stream with a bad digest must never reach.
final class FuzzMachine: MigratableMachine {
    static let regionSizes = [64 * 1024, 32 * 1024]
    let layout: MachineLayout
    let ramRegions: [GuestRAMRegion]
    var sections: [StateSection]
    private(set) var state: RunState
    var runState: RunState { state }
    private(set) var loads = 0
    private(set) var resumes = 0

    init(running: Bool, sections: [StateSection] = []) {
        var regions: [GuestRAMRegion] = []
        var ranges: [MachineLayout.RAMRange] = []
        var address: UInt64 = 0
        for size in FuzzMachine.regionSizes {
            let host = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: 4096)
            host.initializeMemory(as: UInt8.self, repeating: 0, count: size)
            regions.append(GuestRAMRegion(guestAddress: address, size: size, host: host))
            ranges.append(.init(guestAddress: address, size: UInt64(size)))
            address += UInt64(size) + 0x1000_0000
        }
        ramRegions = regions
        layout = MachineLayout(ramRegions: ranges, vcpuCount: 1, devices: ["serial0:16550a@0x3f8"])
        state = running ? .running : .paused(.inmigrate)
        self.sections = sections
    }

    deinit { for region in ramRegions { region.host.deallocate() } }

    func reset() {
        state = .paused(.inmigrate)
        loads = 0
        resumes = 0
    }

    func pause(reason: PauseReason?) throws { state = .paused(reason) }
    func resume() throws { state = .running; resumes += 1 }
    func setPausedReason(_ reason: PauseReason?) { state = .paused(reason) }
    func startDirtyLogging() throws {}
    func stopDirtyLogging() {}
    func collectDirtyPages() throws -> [[UInt64]] {
        ramRegions.map { [UInt64](repeating: 0, count: ($0.pageCount + 63) / 64) }
    }
    /// Collecting re-arms the whole log (nothing is ever dirty here), so no rearm calls come.
    var dirtyLogRearmChunkPages: Int? { nil }
    func rearmDirtyLog(region: Int, firstPage: Int, pageCount: Int, bitmap: ArraySlice<UInt64>) throws {}
    func saveState() throws -> MachineState { MachineState(sections: sections) }
    func loadState(_ newState: MachineState) throws { loads += 1 }
    func setCPUThrottle(percent: Int) {}
}
