import Migration
import Units

/// How the human monitor reads a migration parameter's value from text, as QEMU's
/// hmp_migrate_set_parameter does, into the typed value the migration layer then checks
/// (range, choices) exactly as it checks QMP's.
enum MigrationParameterText {
    enum ParseError: Error, Equatable, CustomStringConvertible {
        case expects(parameter: String, what: String)
        case invalidSize(String)

        var description: String {
            switch self {
            case .expects(let name, let what): return "Parameter '\(name)' expects \(what)"
            case .invalidSize(let text): return "Invalid size \(text)"
            }
        }
    }

    static func value(_ text: String, for parameter: MigrationParameter) throws -> MigrationParameterValue {
        switch parameter.type {
        case .uint8:
            // QEMU's string visitor reads a uint64 first, then checks that it fits.
            guard let number = try? MonitorArguments.parseInteger(text) else {
                throw ParseError.expects(parameter: parameter.name, what: "uint64")
            }
            guard number <= UInt64(UInt8.max) else { throw ParseError.expects(parameter: parameter.name, what: "uint8_t") }
            return .unsigned(number)
        case .size(let range, let humanUnit) where humanUnit != 1:
            // max-bandwidth: QEMU reads it with qemu_strtosz_MiB (a bare number is MiB) and
            // refuses anything past its signed 64-bit field with this message of its own.
            guard let bytes = try? Units.parseSize(text, defaultUnit: humanUnit), bytes <= range.upperBound else {
                throw ParseError.invalidSize(text)
            }
            return .unsigned(bytes)
        case .uint64, .size:
            // QEMU's visit_type_size: suffixes K to E, fractions with a suffix, nothing negative.
            guard let number = try? Units.parseSize(text, defaultUnit: 1) else {
                throw ParseError.expects(parameter: parameter.name, what: "a non-negative number below 2^64")
            }
            return .unsigned(number)
        case .bool:
            guard let on = try? MonitorArguments.parseOnOff(text) else {
                throw ParseError.expects(parameter: parameter.name, what: "'on' or 'off'")
            }
            return .bool(on)
        case .string, .choice:
            return .string(text)
        }
    }
}
