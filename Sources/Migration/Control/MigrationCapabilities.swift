/// On/off migration features with QEMU's names (`migrate_set_capability`,
/// `info migrate_capabilities`). Only the ones swiftkvm implements can be switched on.
public struct MigrationCapabilities: Equatable, Sendable {
    /// Throttle the guest's vCPUs when it dirties memory faster than it can be sent.
    public var autoConverge = false
    /// Emit migration events (QMP's MIGRATION and MIGRATION_PASS).
    public var events = false
    /// The destination always acknowledges on the same socket; this only records the choice.
    public var returnPath = false

    public init() {}

    /// Every capability QEMU 7.2 lists, in its order.
    public static let names = [
        "xbzrle", "rdma-pin-all", "auto-converge", "zero-blocks", "compress", "events",
        "postcopy-ram", "x-colo", "release-ram", "block", "return-path", "pause-before-switchover",
        "multifd", "dirty-bitmaps", "postcopy-blocktime", "late-block-activate", "x-ignore-shared",
        "validate-uuid", "background-snapshot", "zero-copy-send", "postcopy-preempt",
    ]

    public static let supportedNames: Set<String> = ["auto-converge", "events", "return-path"]

    public func isOn(_ name: String) -> Bool {
        switch name {
        case "auto-converge": return autoConverge
        case "events": return events
        case "return-path": return returnPath
        default: return false
        }
    }

    public mutating func set(name: String, on: Bool) throws {
        switch name {
        case "auto-converge": autoConverge = on
        case "events": events = on
        case "return-path": returnPath = on
        default:
            guard Self.names.contains(name) else {
                throw MigrationError.invalidParameter("invalid parameter value: \(name)")
            }
            // Switching an unimplemented feature off is what it already is.
            if on { throw MigrationError.capabilityNotSupported(name) }
        }
    }

    /// Parses HMP's `on` / `off` and sets the capability.
    public mutating func set(name: String, value: String) throws {
        switch value {
        case "on": try set(name: name, on: true)
        case "off": try set(name: name, on: false)
        default: throw MigrationError.invalidParameter("Parameter 'state' expects 'on' or 'off'")
        }
    }

    /// `info migrate_capabilities`: one `name: on|off` line per capability.
    public func formatInfo() -> String {
        Self.names.map { "\($0): \(isOn($0) ? "on" : "off")\n" }.joined()
    }
}
