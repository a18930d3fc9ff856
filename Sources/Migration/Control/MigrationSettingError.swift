/// Why a parameter or capability was not set, in QEMU's words where QEMU has them (QMP
/// replies with these as they are; the human monitor prefixes `Error: `, as QEMU's does).
public enum MigrationSettingError: Error, Equatable, CustomStringConvertible {
    /// A name that is neither a parameter nor a capability QEMU has.
    case unknownName(String)
    /// A QEMU parameter swiftkvm does not implement.
    case parameterNotSupported(String)
    case capabilityNotSupported(String)
    case wrongType(parameter: String, expected: String)
    case outOfRange(parameter: String, expected: String)
    case notAChoice(parameter: String, value: String)
    /// A value QEMU has that swiftkvm does not (multifd-compression zlib).
    case valueNotSupported(parameter: String, value: String, reason: String)

    public var description: String {
        switch self {
        case .unknownName(let name): return "invalid parameter value: \(name)"
        case .parameterNotSupported(let name): return "Parameter '\(name)' is not supported by swiftkvm"
        case .capabilityNotSupported(let name): return "Capability '\(name)' is not supported by swiftkvm"
        case .wrongType(let name, let expected), .outOfRange(let name, let expected):
            return "Parameter '\(name)' expects \(expected)"
        case .notAChoice(let name, let value): return "Parameter '\(name)' does not accept value '\(value)'"
        case .valueNotSupported(let name, let value, let reason):
            return "Parameter '\(name)' value '\(value)' is not supported: \(reason)"
        }
    }
}
