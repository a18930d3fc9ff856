import Glibc
import Machine
@testable import Migration
import SystemSupport

/// A machine made of plain memory: RAM regions from mmap, a dirty bitmap the test (or a
/// "guest" thread) sets, a running flag, and canned state sections.
final class FakeMachine: MigratableMachine {
    let layout: MachineLayout
    let ramRegions: [GuestRAMRegion]
    private let lock = Mutex()
    private var state: RunState
    private var logging = false
    private var dirty: [[UInt64]]

    var savedSections: [StateSection]
    private var loaded: [MachineState] = []
    private var resumes = 0
    private var throttles: [Int] = []
    private var stopLogging = 0
    var failLoad = false
    /// Runs at the start of every `collectDirtyPages` with its 1-based number: a deterministic
    /// stand-in for a guest that wrote pages during the pass that just ended.
    var onCollect: ((Int) -> Void)?
    private var collects = 0
    /// Manual dirty-log protection as KVM does it with INITIALLY_SET: logging starts with every
    /// page dirty, collecting does not clear, and `rearmDirtyLog` clears bits. Nil: collecting
    /// clears (KVM_GET_DIRTY_LOG without manual protect).
    var dirtyLogRearmChunkPages: Int?
    /// Runs at the start of every `rearmDirtyLog`, before its bits are cleared: a write here is
    /// one the guest made just before the re-arm, which the sender must still read.
    var onRearm: ((_ region: Int, _ firstPage: Int) -> Void)?
    private var rearmed: [(region: Int, firstPage: Int, pageCount: Int)] = []
    var rearms: [(region: Int, firstPage: Int, pageCount: Int)] { lock.withLock { rearmed } }

    init(regionSizes: [Int], vcpus: Int = 1, devices: [String] = ["serial0:16550a@0x3f8"],
         running: Bool = true, sections: [StateSection] = FakeMachine.defaultSections) {
        var regions: [GuestRAMRegion] = []
        var ranges: [MachineLayout.RAMRange] = []
        var address: UInt64 = 0
        for size in regionSizes {
            let host = mmap(nil, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)!
            regions.append(GuestRAMRegion(guestAddress: address, size: size, host: host))
            ranges.append(.init(guestAddress: address, size: UInt64(size)))
            address += UInt64(size) + 0x1000_0000
        }
        ramRegions = regions
        layout = MachineLayout(ramRegions: ranges, vcpuCount: vcpus, devices: devices)
        state = running ? .running : .paused(.inmigrate)
        dirty = regions.map { [UInt64](repeating: 0, count: ($0.pageCount + 63) / 64) }
        savedSections = sections
    }

    deinit {
        for region in ramRegions { munmap(region.host, region.size) }
    }

    static let defaultSections = [
        StateSection(name: "serial0", version: 1, bytes: [1, 2, 3]),
        StateSection(name: "cpu0", version: 2, bytes: Array(repeating: 7, count: 5000)),
        StateSection(name: "vm", version: 1, bytes: []),
    ]

    var runState: RunState { lock.withLock { state } }
    var isLogging: Bool { lock.withLock { logging } }
    var loadedStates: [MachineState] { lock.withLock { loaded } }
    var resumeCount: Int { lock.withLock { resumes } }
    var throttleCalls: [Int] { lock.withLock { throttles } }
    var stopLoggingCount: Int { lock.withLock { stopLogging } }

    func pause(reason: PauseReason?) throws {
        lock.withLock { state = .paused(reason) }
    }

    func resume() throws {
        lock.withLock { state = .running; resumes += 1 }
    }

    func setPausedReason(_ reason: PauseReason?) {
        lock.withLock { state = .paused(reason) }
    }

    func startDirtyLogging() throws {
        lock.withLock {
            logging = true
            let initially: UInt64 = dirtyLogRearmChunkPages == nil ? 0 : .max
            for i in dirty.indices { for j in dirty[i].indices { dirty[i][j] = initially } }
        }
    }

    func rearmDirtyLog(region: Int, firstPage: Int, pageCount: Int, bitmap: ArraySlice<UInt64>) throws {
        onRearm?(region, firstPage)
        lock.withLock {
            rearmed.append((region, firstPage, pageCount))
            for (offset, word) in bitmap.enumerated() where firstPage / 64 + offset < dirty[region].count {
                dirty[region][firstPage / 64 + offset] &= ~word
            }
        }
    }

    func stopDirtyLogging() {
        lock.withLock { logging = false; stopLogging += 1 }
    }

    func collectDirtyPages() throws -> [[UInt64]] {
        let number = lock.withLock { () -> Int in collects += 1; return collects }
        onCollect?(number)
        return lock.withLock {
            let result = dirty
            if dirtyLogRearmChunkPages == nil {
                for i in dirty.indices { for j in dirty[i].indices { dirty[i][j] = 0 } }
            }
            return result
        }
    }

    func saveState() throws -> MachineState { MachineState(sections: savedSections) }

    func loadState(_ newState: MachineState) throws {
        if failLoad { throw FakeError.loadRefused }
        lock.withLock { loaded.append(newState) }
    }

    func setCPUThrottle(percent: Int) {
        lock.withLock { throttles.append(percent) }
    }

    /// The "guest" writes one byte into a page, if it runs; returns whether it did.
    @discardableResult
    func guestWrite(region: Int, page: Int, value: UInt8) -> Bool {
        lock.withLock {
            guard state == .running else { return false }
            ramRegions[region].host.storeBytes(of: value, toByteOffset: page * GuestRAMRegion.pageSize + 100, as: UInt8.self)
            if logging { dirty[region][page / 64] |= 1 << UInt64(page % 64) }
            return true
        }
    }

    /// Fills RAM with a reproducible pattern: every `zeroEvery`-th page stays zero.
    func fillPattern(seed: UInt64, zeroEvery: Int = 3) {
        var random = seed
        for region in ramRegions {
            for page in 0..<region.pageCount {
                let base = region.host + page * GuestRAMRegion.pageSize
                if page % zeroEvery == 0 {
                    memset(base, 0, GuestRAMRegion.pageSize)
                    continue
                }
                for word in 0..<(GuestRAMRegion.pageSize / 8) {
                    random = random &* 6364136223846793005 &+ 1442695040888963407
                    base.storeBytes(of: random, toByteOffset: word * 8, as: UInt64.self)
                }
            }
        }
    }

    func ramEquals(_ other: FakeMachine) -> Bool {
        zip(ramRegions, other.ramRegions).allSatisfy { memcmp($0.host, $1.host, $0.size) == 0 }
    }

    func isAllZero() -> Bool {
        ramRegions.allSatisfy { region in
            (0..<region.pageCount).allSatisfy { isZeroPage(region.host + $0 * GuestRAMRegion.pageSize) }
        }
    }
}

enum FakeError: Error, CustomStringConvertible {
    case loadRefused
    var description: String { "section 'cpu0' is malformed" }
}
