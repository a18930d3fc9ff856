import Units

/// Tunables with QEMU's names, defaults and units (`migrate_set_parameter`,
/// `info migrate_parameters`). Range errors name the parameter with hyphens, as users type it
/// (QEMU 7.2 prints some with underscores).
public struct MigrationParameters: Equatable, Sendable {
    /// Longest acceptable pause at switchover, in milliseconds.
    public var downtimeLimitMs: UInt64 = 300
    /// Bytes per second; 0 means unlimited (as in QEMU 7.2).
    public var maxBandwidth: UInt64 = 134_217_728
    /// Percent of the bytes sent in a pass that the guest may dirty before auto-converge counts it.
    public var throttleTriggerThreshold = 50
    public var cpuThrottleInitial = 20
    public var cpuThrottleIncrement = 10
    public var maxCPUThrottle = 99

    public init() {}

    /// Names `migrate_set_parameter` accepts, in `info migrate_parameters` order.
    public static let names = [
        "throttle-trigger-threshold", "cpu-throttle-initial", "cpu-throttle-increment",
        "max-cpu-throttle", "max-bandwidth", "downtime-limit",
    ]

    /// QEMU parameters this project knows of but does not implement.
    static let unsupportedNames: Set<String> = [
        "announce-initial", "announce-max", "announce-rounds", "announce-step", "compress-level",
        "compress-threads", "compress-wait-thread", "decompress-threads", "cpu-throttle-tailslow",
        "tls-creds", "tls-hostname", "tls-authz", "x-checkpoint-delay", "block-incremental",
        "multifd-channels", "multifd-compression", "multifd-zlib-level", "multifd-zstd-level",
        "xbzrle-cache-size", "max-postcopy-bandwidth",
    ]

    /// Sets one parameter from its HMP text. `max-bandwidth` takes a size where a bare number
    /// means MiB/s; suffixes and fractions are accepted (`1G`, `512K`, `1.5M`, `100`).
    public mutating func set(name: String, value: String) throws {
        switch name {
        case "downtime-limit":
            let ms = try Self.integer(value, name: name, type: "uint64")
            guard ms <= 2_000_000 else {
                throw Self.rangeError(name, "an integer in the range of 0 to 2000000 milliseconds")
            }
            downtimeLimitMs = ms
        case "max-bandwidth":
            // QEMU's qemu_strtosz_MiB, and its limit: the QAPI field is a signed 64-bit size.
            guard let bytes = try? Units.parseSize(value, defaultUnit: 1 << 20), bytes <= UInt64(Int64.max) else {
                throw MigrationError.invalidParameter("Invalid size \(value)")
            }
            maxBandwidth = bytes
        case "throttle-trigger-threshold":
            throttleTriggerThreshold = try Self.percent(value, name: name, range: 1...100)
        case "cpu-throttle-initial":
            cpuThrottleInitial = try Self.percent(value, name: name, range: 1...99)
        case "cpu-throttle-increment":
            cpuThrottleIncrement = try Self.percent(value, name: name, range: 1...99)
        case "max-cpu-throttle":
            maxCPUThrottle = try Self.percent(value, name: name, range: 1...99)
        default:
            if Self.unsupportedNames.contains(name) {
                throw MigrationError.invalidParameter("Parameter '\(name)' is not supported by swiftkvm")
            }
            throw MigrationError.invalidParameter("invalid parameter value: \(name)")
        }
    }

    /// `info migrate_parameters`: QEMU's HMP lines, in its order, for the parameters we have.
    public func formatInfo() -> String {
        """
        throttle-trigger-threshold: \(throttleTriggerThreshold)
        cpu-throttle-initial: \(cpuThrottleInitial)
        cpu-throttle-increment: \(cpuThrottleIncrement)
        max-cpu-throttle: \(maxCPUThrottle)
        max-bandwidth: \(maxBandwidth) bytes/second
        downtime-limit: \(downtimeLimitMs) ms

        """
    }

    private static func percent(_ text: String, name: String, range: ClosedRange<Int>) throws -> Int {
        let value = try integer(text, name: name, type: "uint8")
        guard value <= UInt64(range.upperBound), value >= UInt64(range.lowerBound) else {
            throw rangeError(name, "an integer in the range of \(range.lowerBound) to \(range.upperBound)")
        }
        return Int(value)
    }

    /// Decimal or 0x-prefixed hexadecimal, as QEMU's string input visitor accepts.
    private static func integer(_ text: String, name: String, type: String) throws -> UInt64 {
        let parsed: UInt64?
        if text.hasPrefix("0x") || text.hasPrefix("0X") {
            parsed = UInt64(text.dropFirst(2), radix: 16)
        } else {
            parsed = text.first == "+" ? nil : UInt64(text)
        }
        guard let value = parsed, type != "uint8" || value <= 255 else {
            throw MigrationError.invalidParameter("Parameter '\(name)' expects \(type)")
        }
        return value
    }

    private static func rangeError(_ name: String, _ expectation: String) -> MigrationError {
        .invalidParameter("Parameter '\(name)' expects \(expectation)")
    }
}
