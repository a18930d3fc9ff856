/// The current value of every parameter in `MigrationParameter.all`, each checked against its
/// parameter's type and range when set.
public struct MigrationParameters: Equatable, Sendable {
    private var values: [MigrationParameter: MigrationParameterValue] = [:]

    public init() {}

    public subscript(parameter: MigrationParameter) -> MigrationParameterValue {
        values[parameter] ?? parameter.defaultValue
    }

    public mutating func set(_ parameter: MigrationParameter, to value: MigrationParameterValue) throws {
        values[parameter] = try parameter.checked(value)
    }

    /// Sets every change or, if one is refused, none (QEMU's migrate-set-parameters).
    public mutating func set(_ changes: [(MigrationParameter, MigrationParameterValue)]) throws {
        var updated = self
        for (parameter, value) in changes { try updated.set(parameter, to: value) }
        self = updated
    }

    // Typed views for the code that uses the parameters.

    /// Longest acceptable pause at switchover, in milliseconds.
    public var downtimeLimitMs: UInt64 { unsigned(.downtimeLimit) }
    /// Bytes per second; 0 means unlimited.
    public var maxBandwidth: UInt64 { unsigned(.maxBandwidth) }
    /// Percent of the bytes sent in a pass that the guest may dirty before auto-converge counts it.
    public var throttleTriggerThreshold: Int { Int(unsigned(.throttleTriggerThreshold)) }
    public var cpuThrottleInitial: Int { Int(unsigned(.cpuThrottleInitial)) }
    public var cpuThrottleIncrement: Int { Int(unsigned(.cpuThrottleIncrement)) }
    public var maxCPUThrottle: Int { Int(unsigned(.maxCPUThrottle)) }

    public var multifdChannels: Int { Int(unsigned(.multifdChannels)) }
    /// True for multifd-compression zstd (it counts only with the multifd capability on).
    public var compressesWithZstd: Bool { string(.multifdCompression) == "zstd" }
    public var multifdZstdLevel: Int { Int(unsigned(.multifdZstdLevel)) }

    public var tlsCreds: String { string(.tlsCreds) }
    public var tlsHostname: String { string(.tlsHostname) }
    public var tlsAuthz: String { string(.tlsAuthz) }

    private func string(_ parameter: MigrationParameter) -> String {
        guard case .string(let text) = self[parameter] else { return "" }
        return text
    }

    private func unsigned(_ parameter: MigrationParameter) -> UInt64 {
        guard case .unsigned(let number) = self[parameter] else { return 0 }
        return number
    }
}
