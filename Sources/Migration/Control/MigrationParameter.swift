/// One migration parameter as QEMU's qapi/migration.json declares it: name, type, default,
/// unit, allowed range and what it does. `all` is the one list that QMP, the human monitor,
/// `info migrate_parameters` and completion read, so adding a parameter is adding an entry
/// there (and, for the code that uses it, a typed accessor on `MigrationParameters`).
public struct MigrationParameter: Hashable, Sendable {
    public let name: String
    public let type: MigrationParameterType
    public let defaultValue: MigrationParameterValue
    /// What the number counts; nil for words, switches and plain counts.
    public let unit: MigrationParameterUnit?
    public let documentation: String

    public init(_ name: String, _ type: MigrationParameterType, default defaultValue: MigrationParameterValue,
                unit: MigrationParameterUnit? = nil, _ documentation: String) {
        self.name = name; self.type = type; self.defaultValue = defaultValue
        self.unit = unit; self.documentation = documentation
    }

    public static let throttleTriggerThreshold = MigrationParameter(
        "throttle-trigger-threshold", .uint8(1...100), default: .unsigned(50), unit: .percent,
        "Share of the bytes sent in a pass that the guest may dirty before auto-converge counts the pass against it")
    public static let cpuThrottleInitial = MigrationParameter(
        "cpu-throttle-initial", .uint8(1...99), default: .unsigned(20), unit: .percent,
        "vCPU throttle auto-converge starts at")
    public static let cpuThrottleIncrement = MigrationParameter(
        "cpu-throttle-increment", .uint8(1...99), default: .unsigned(10), unit: .percent,
        "How much auto-converge raises the vCPU throttle each time the guest still dirties too fast")
    public static let maxCPUThrottle = MigrationParameter(
        "max-cpu-throttle", .uint8(1...99), default: .unsigned(99), unit: .percent,
        "Highest vCPU throttle auto-converge may reach")
    /// QEMU's QAPI field is a signed 64-bit size, hence the upper bound.
    public static let maxBandwidth = MigrationParameter(
        "max-bandwidth", .size(0...UInt64(Int64.max), humanUnit: 1 << 20), default: .unsigned(134_217_728),
        unit: .bytesPerSecond,
        "Rate limit of the migration stream; 0 means unlimited (as in QEMU 7.2). A bare number typed at the human monitor is MiB/s")
    public static let downtimeLimit = MigrationParameter(
        "downtime-limit", .uint64(0...2_000_000), default: .unsigned(300), unit: .milliseconds,
        "Longest acceptable pause of the guest at switchover")

    /// The id of a `tls-creds-x509` or `tls-creds-psk` object: when set, the migration is TLS
    /// (both sides set it, each with its own endpoint). Empty: plain.
    public static let tlsCreds = MigrationParameter(
        "tls-creds", .string, default: .string(""),
        "Id of the TLS credentials object (-object tls-creds-x509 or tls-creds-psk) that encrypts the migration; empty for none")
    public static let tlsHostname = MigrationParameter(
        "tls-hostname", .string, default: .string(""),
        "Name the destination's certificate must carry; empty means the host of the tcp: URI")
    public static let tlsAuthz = MigrationParameter(
        "tls-authz", .string, default: .string(""),
        "Id of the authz-simple object whose identity the destination lets in; empty lets in any peer the credentials accept")

    /// With the `multifd` capability: in swiftkvm, how many threads may compress RAM batches
    /// (the stream stays one connection, README "Live migration: compression").
    public static let multifdChannels = MigrationParameter(
        "multifd-channels", .uint8(1...255), default: .unsigned(2),
        "Number of multifd channels; in swiftkvm the stream stays one connection, and this counts the threads that may compress it")
    /// zlib is a QEMU word that swiftkvm does not build in: refused with its own message.
    public static let multifdCompression = MigrationParameter(
        "multifd-compression", .choice(["none", "zstd"]), default: .string("none"),
        "How multifd compresses RAM pages: none or zstd (only where it makes the migration faster)")
    public static let multifdZstdLevel = MigrationParameter(
        "multifd-zstd-level", .uint8(0...20), default: .unsigned(1),
        "zstd compression level for multifd-compression zstd (0 is zstd's default, 3)")

    /// Every parameter swiftkvm implements, in QEMU's `info migrate_parameters` order
    /// (QEMU 7.2 prints no multifd-zstd-level; later versions print it after multifd-compression).
    public static let all: [MigrationParameter] = [
        throttleTriggerThreshold, cpuThrottleInitial, cpuThrottleIncrement, maxCPUThrottle, tlsCreds, tlsHostname,
        maxBandwidth, downtimeLimit, multifdChannels, multifdCompression, multifdZstdLevel, tlsAuthz,
    ]

    /// Values QEMU accepts that swiftkvm refuses with a reason of its own.
    static let refusedValues: [String: [String: String]] = [
        "multifd-compression": ["zlib": "swiftkvm builds in only none and zstd"],
    ]

    /// QEMU parameters this project knows of but does not implement: refused by name.
    public static let unsupportedNames: Set<String> = [
        "announce-initial", "announce-max", "announce-rounds", "announce-step", "compress-level",
        "compress-threads", "compress-wait-thread", "decompress-threads", "cpu-throttle-tailslow",
        "x-checkpoint-delay", "block-incremental",
        "multifd-zlib-level",
        "xbzrle-cache-size", "max-postcopy-bandwidth",
    ]

    /// The parameter a user named, or QEMU's error for a name it does not know.
    public static func named(_ name: String) throws -> MigrationParameter {
        if let parameter = all.first(where: { $0.name == name }) { return parameter }
        if unsupportedNames.contains(name) { throw MigrationSettingError.parameterNotSupported(name) }
        throw MigrationSettingError.unknownName(name)
    }

    /// `value` if it has this parameter's type and lies in its range (QEMU's
    /// migrate_params_check); the same rule for QMP and the human monitor. Errors name the
    /// parameter with hyphens, as users type it (QEMU 7.2 prints some with underscores).
    public func checked(_ value: MigrationParameterValue) throws -> MigrationParameterValue {
        switch (type, value) {
        case (.uint8(let range), .unsigned(let number)), (.uint64(let range), .unsigned(let number)),
             (.size(let range, _), .unsigned(let number)):
            guard range.contains(number) else {
                let unitWord = unit == .milliseconds ? " milliseconds" : ""
                throw MigrationSettingError.outOfRange(
                    parameter: name, expected: "an integer in the range of \(range.lowerBound) to \(range.upperBound)\(unitWord)")
            }
        case (.bool, .bool), (.string, .string):
            break
        case (.choice(let words), .string(let word)):
            if let reason = Self.refusedValues[name]?[word] {
                throw MigrationSettingError.valueNotSupported(parameter: name, value: word, reason: reason)
            }
            guard words.contains(word) else { throw MigrationSettingError.notAChoice(parameter: name, value: word) }
        default:
            throw MigrationSettingError.wrongType(parameter: name, expected: type.qapiName)
        }
        return value
    }
}

/// A parameter's type, named after QEMU's QAPI types, since QMP and the human monitor read
/// each one differently.
public enum MigrationParameterType: Hashable, Sendable {
    /// QAPI `uint8` (percentages, counts); the human monitor takes a decimal or 0x number.
    case uint8(ClosedRange<UInt64>)
    /// QAPI `uint64`; QEMU's human monitor reads it as a size (`1K` is 1024), and so does ours.
    case uint64(ClosedRange<UInt64>)
    /// QAPI `size`, in bytes; at the human monitor a bare number counts `humanUnit` bytes.
    case size(ClosedRange<UInt64>, humanUnit: UInt64)
    case bool
    case string
    /// One word of a fixed set (a QAPI enum).
    case choice([String])

    /// The QAPI type name, as type errors name it.
    public var qapiName: String {
        switch self {
        case .uint8: return "uint8"
        case .uint64, .size: return "uint64"
        case .bool: return "bool"
        case .string, .choice: return "string"
        }
    }
}

/// A parameter's value, typed end to end: QMP integers stay integers.
public enum MigrationParameterValue: Hashable, Sendable {
    case unsigned(UInt64)
    case bool(Bool)
    case string(String)
}

public enum MigrationParameterUnit: Hashable, Sendable {
    case percent
    case milliseconds
    case bytes
    case bytesPerSecond
}
