/// One on/off migration feature with QEMU's name (qapi/migration.json's MigrationCapability).
/// `all` is the one list that QMP, the human monitor, `info migrate_capabilities` and completion
/// read; every capability is off by default, as in QEMU, and only supported ones can be switched on.
public struct MigrationCapability: Hashable, Sendable {
    public let name: String
    public let isSupported: Bool
    public let documentation: String

    public init(_ name: String, supported: Bool = false, _ documentation: String) {
        self.name = name; self.isSupported = supported; self.documentation = documentation
    }

    public static let autoConverge = MigrationCapability(
        "auto-converge", supported: true,
        "Throttle the guest's vCPUs when it dirties memory faster than it can be sent")
    public static let events = MigrationCapability(
        "events", supported: true, "Send QMP's MIGRATION and MIGRATION_PASS events")
    public static let returnPath = MigrationCapability(
        "return-path", supported: true,
        "The destination answers on the migration connection; swiftkvm's always does, so this only records the choice")

    public static let postcopyRAM = MigrationCapability(
        "postcopy-ram", supported: true,
        "Allow migrate_start_postcopy: the guest moves at once and the destination fetches the pages still missing")

    public static let postcopyBlocktime = MigrationCapability(
        "postcopy-blocktime", supported: true,
        "Show on the destination how long vCPUs waited for missing pages during post-copy")

    public static let ignoreShared = MigrationCapability(
        "x-ignore-shared", supported: true,
        "Do not send shared memory: over unix:, memfd-backed RAM is handed over as its file descriptor")
    /// QEMU 9.0's mapped-ram: with file:, every page has its own place in the file.
    public static let mappedRAM = MigrationCapability(
        "mapped-ram", supported: true,
        "Write file: snapshots with each page at a fixed offset (zero pages as holes), restorable by mapping the file")

    /// QEMU's multifd: in swiftkvm the stream stays one connection, and this switches on
    /// multifd-compression (compressed in up to multifd-channels threads).
    public static let multifd = MigrationCapability(
        "multifd", supported: true,
        "Use multifd-compression: RAM batches are compressed (by multifd-channels threads) where that is faster; one connection")

    /// Every capability QEMU 7.2 lists, in its order, then QEMU 9.0's mapped-ram.
    public static let all: [MigrationCapability] = [
        MigrationCapability("xbzrle", "Send pages as XOR-encoded differences from a cache"),
        MigrationCapability("rdma-pin-all", "Pin all guest memory for RDMA"),
        autoConverge,
        MigrationCapability("zero-blocks", "Skip zero blocks in block migration"),
        MigrationCapability("compress", "Compress pages with threads"),
        events,
        postcopyRAM,
        MigrationCapability("x-colo", "COarse-grain LOck-stepping fault tolerance"),
        MigrationCapability("release-ram", "Free source RAM as it is sent during post-copy"),
        MigrationCapability("block", "Migrate block devices too"),
        returnPath,
        MigrationCapability("pause-before-switchover", "Pause before switching over, until told to go on"),
        multifd,
        MigrationCapability("dirty-bitmaps", "Migrate block dirty bitmaps"),
        postcopyBlocktime,
        MigrationCapability("late-block-activate", "Activate block devices only when the guest starts"),
        ignoreShared,
        MigrationCapability("validate-uuid", "Check that the destination's UUID matches"),
        MigrationCapability("background-snapshot", "Snapshot with write-protection instead of dirty logging"),
        MigrationCapability("zero-copy-send", "Send pages without copying them"),
        MigrationCapability("postcopy-preempt", "Send urgent post-copy pages on their own channel"),
        mappedRAM,
    ]

    /// The capability a user named, or QEMU's error for a name it does not know.
    public static func named(_ name: String) throws -> MigrationCapability {
        guard let capability = all.first(where: { $0.name == name }) else {
            throw MigrationSettingError.unknownName(name)
        }
        return capability
    }
}

/// Which capabilities are on.
public struct MigrationCapabilities: Equatable, Sendable {
    private var enabled: Set<MigrationCapability> = []

    public init() {}

    public func isOn(_ capability: MigrationCapability) -> Bool { enabled.contains(capability) }

    /// Switching an unsupported capability off is allowed: it is what it already is.
    public mutating func set(_ capability: MigrationCapability, on: Bool) throws {
        guard on else { enabled.remove(capability); return }
        guard capability.isSupported else { throw MigrationSettingError.capabilityNotSupported(capability.name) }
        enabled.insert(capability)
    }

    /// Sets every change or, if one is refused, none (QEMU's migrate-set-capabilities).
    public mutating func set(_ changes: [(MigrationCapability, Bool)]) throws {
        var updated = self
        for (capability, on) in changes { try updated.set(capability, on: on) }
        self = updated
    }

    public var autoConverge: Bool { isOn(.autoConverge) }
    public var events: Bool { isOn(.events) }
    public var returnPath: Bool { isOn(.returnPath) }
    public var postcopyRAM: Bool { isOn(.postcopyRAM) }
    public var postcopyBlocktime: Bool { isOn(.postcopyBlocktime) }
    public var mappedRAM: Bool { isOn(.mappedRAM) }
    public var ignoreShared: Bool { isOn(.ignoreShared) }
    public var multifd: Bool { isOn(.multifd) }
}
