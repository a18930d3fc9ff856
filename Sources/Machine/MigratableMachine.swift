/// What the migration layer needs from a machine: its RAM, dirty tracking, pausing, and its
/// state as opaque sections. `Machine` conforms; tests use a plain-memory fake.

/// One contiguous range of guest-physical RAM and where it lives in this process.
public struct GuestRAMRegion: @unchecked Sendable {
    public let guestAddress: UInt64
    public let size: Int
    /// Host mapping of the region; valid for the machine's lifetime (its backing may be
    /// replaced in place, the address stays).
    public let host: UnsafeMutableRawPointer
    /// True for private anonymous memory: then migration may read /proc/self/pagemap to skip
    /// pages the host never backed (they read as zero) without touching them. An untouched
    /// page of a file or memfd mapping holds whatever the file does.
    public let untouchedPagesReadAsZero: Bool

    public init(guestAddress: UInt64, size: Int, host: UnsafeMutableRawPointer, untouchedPagesReadAsZero: Bool = true) {
        self.guestAddress = guestAddress; self.size = size; self.host = host
        self.untouchedPagesReadAsZero = untouchedPagesReadAsZero
    }

    public var pageCount: Int { size / GuestRAMRegion.pageSize }
    public static let pageSize = 4096
}

/// The shape a destination must match: checked before any page is accepted.
public struct MachineLayout: Equatable, Sendable, CustomStringConvertible {
    /// (guest-physical start, size in bytes) of every RAM region, in order.
    public var ramRegions: [RAMRange]
    public var vcpuCount: Int
    /// Devices present, by name and lowest address (e.g. "serial0@0x3f8").
    public var devices: [String]

    public struct RAMRange: Equatable, Sendable {
        public var guestAddress: UInt64
        public var size: UInt64
        public init(guestAddress: UInt64, size: UInt64) { self.guestAddress = guestAddress; self.size = size }
    }

    public init(ramRegions: [RAMRange], vcpuCount: Int, devices: [String]) {
        self.ramRegions = ramRegions; self.vcpuCount = vcpuCount; self.devices = devices
    }

    public var ramSize: UInt64 { ramRegions.reduce(0) { $0 + $1.size } }

    public var description: String {
        "\(ramSize / (1024 * 1024)) MiB RAM, \(vcpuCount) vCPU, devices \(devices.joined(separator: ", "))"
    }
}

/// One named, versioned piece of machine state (a device, a vCPU, the VM) as bytes.
public struct StateSection: Equatable, Sendable {
    public var name: String
    public var version: UInt32
    public var bytes: [UInt8]
    public init(name: String, version: UInt32, bytes: [UInt8]) {
        self.name = name; self.version = version; self.bytes = bytes
    }
}

/// Everything but RAM, in save order (devices, then vCPUs, then the VM).
public struct MachineState: Equatable, Sendable {
    public var sections: [StateSection]
    public init(sections: [StateSection]) { self.sections = sections }
}

public protocol MigratableMachine: AnyObject {
    var layout: MachineLayout { get }
    var ramRegions: [GuestRAMRegion] { get }
    var runState: RunState { get }

    /// Takes every vCPU out of KVM_RUN and keeps it out; on return no guest code runs.
    func pause(reason: PauseReason?) throws
    /// Lets the vCPUs run again.
    func resume() throws
    /// Changes the reported state without running or stopping anything (e.g. inmigrate).
    func setPausedReason(_ reason: PauseReason?)
    /// After a completed outgoing migration: `paused (postmigrate)`. When the guest now runs
    /// elsewhere, resuming it here needs force (see `Machine.cont`).
    func markMigrated(guestRunsElsewhere: Bool)

    /// Switches dirty logging on for every RAM region; the next `collectDirtyPages` reports
    /// pages written since this call.
    func startDirtyLogging() throws
    func stopDirtyLogging()
    /// Pages written since the previous call (or since logging started), one bitmap per
    /// region (bit i of word i/64 = page i), including writes the VMM made itself.
    func collectDirtyPages() throws -> [[UInt64]]
    /// With manual dirty-log protection (KVM_CLEAR_DIRTY_LOG), the pages per `rearmDirtyLog`
    /// call; nil when collecting re-arms the whole log itself. When not nil, collecting leaves
    /// the log as it is, so a page stays reported until it is re-armed: a sender must re-arm
    /// the pages it is about to read (never after reading, or a write in between is lost).
    var dirtyLogRearmChunkPages: Int? { get }
    /// Makes the next guest write to each page set in `bitmap` (bit 0 = `firstPage`, a
    /// multiple of the chunk) logged again, and forgets that it was dirty.
    func rearmDirtyLog(region: Int, firstPage: Int, pageCount: Int, bitmap: ArraySlice<UInt64>) throws

    /// Captures all non-RAM state. The machine must be paused.
    func saveState() throws -> MachineState
    /// Restores state captured by `saveState` on a machine of the same layout. Throws a
    /// `MachineError` naming the section when a section is missing, unknown or malformed.
    func loadState(_ state: MachineState) throws

    /// Auto-converge: keep vCPUs out of the guest for `percent`% of each 10 ms slice (0 = off).
    func setCPUThrottle(percent: Int)

    // RAM backings (RAMBacking): what a mapped-ram restore and a same-host handoff swap in.

    /// Whether the user asked for all of RAM up front (-mem-prealloc): a mapped-ram restore
    /// then reads every page in instead of mapping the file.
    var preallocatesRAM: Bool { get }
    /// Maps region i onto `file` at `offsets[i]`, copy-on-write. The guest must not have run.
    func mapRAM(privatelyFrom file: Int32, offsets: [Int]) throws
    /// The memfd behind all of RAM (`memory-backend-memfd`), or nil.
    var sharedRAM: SharedRAM? { get }
    /// Maps region i onto the received memfd at `offsets[i]`; takes `fd` over. Not running.
    func adoptSharedRAM(fd: Int32, offsets: [Int]) throws
    /// After a handoff: replaces RAM with fresh zero pages, so this copy can no longer touch
    /// the guest's memory, which another process now runs.
    func releaseSharedRAM() throws
}

/// A memfd holding every RAM region, and where each region lies in it.
public struct SharedRAM: Equatable, Sendable {
    public var fd: Int32
    public var offsets: [Int]
    public init(fd: Int32, offsets: [Int]) { self.fd = fd; self.offsets = offsets }
}

/// What a machine without these backings (a test's fake) answers.
public struct RAMBackingUnsupported: Error, CustomStringConvertible {
    public init() {}
    public var description: String { "this machine cannot change how its RAM is backed" }
}

extension MigratableMachine {
    public func markMigrated(guestRunsElsewhere: Bool) { setPausedReason(.postmigrate) }
    public var preallocatesRAM: Bool { false }
    public func mapRAM(privatelyFrom file: Int32, offsets: [Int]) throws { throw RAMBackingUnsupported() }
    public var sharedRAM: SharedRAM? { nil }
    public func adoptSharedRAM(fd: Int32, offsets: [Int]) throws { throw RAMBackingUnsupported() }
    public func releaseSharedRAM() throws { throw RAMBackingUnsupported() }
}
