import Glibc

/// Everything that can go wrong running a monitor line. Usage errors get QEMU's
/// `Try "help CMD"` hint from the interpreter; the others describe a failed action.
public enum MonitorError: Error, Equatable, CustomStringConvertible {
    case unknownCommand(String)
    case unterminatedQuote
    case unsupportedEscape(Character)
    case missingArgument(command: String, argument: String)
    case extraArguments(command: String, text: String)
    case invalidNumber(String)
    case numberTooLarge(String, max: UInt64)
    case invalidSize(String)
    case expectedOnOff(String)
    case invalidFormatCharacter(Character)
    case disassemblyUnsupported
    case dumpTooLarge(bytes: UInt64, max: UInt64)
    /// `cpu N` beyond the last vCPU: QEMU's wording, then how many there are.
    case invalidCPUIndex(available: Int)
    /// `info registers N` beyond the last vCPU (QEMU's wording).
    case cpuNotAvailable(Int)
    case rangeOverflow(address: UInt64, size: UInt64)
    case memoryNotReadable(address: UInt64, size: UInt64, reason: String)
    case fileWriteFailed(path: String, reason: String)
    case backendFailed(command: String, reason: String)

    /// Whether the user typed the command wrongly, so the `help` hint applies.
    public var isUsageError: Bool {
        switch self {
        case .missingArgument, .extraArguments, .invalidNumber, .numberTooLarge, .invalidSize,
             .expectedOnOff, .invalidFormatCharacter, .unterminatedQuote, .unsupportedEscape,
             .dumpTooLarge:
            return true
        default:
            return false
        }
    }

    public var description: String {
        switch self {
        case .unknownCommand(let name):
            return "unknown command: '\(name)'"
        case .unterminatedQuote:
            return "unterminated string literal: close it with a double quote (\")"
        case .unsupportedEscape(let c):
            return "unsupported escape code: '\\\(c)' (use \\\" \\\\ \\' \\n or \\r)"
        case .missingArgument(let command, let argument):
            return "\(command): missing argument '\(argument)'"
        case .extraArguments(let command, let text):
            return "\(command): extraneous characters at the end of line: '\(text)'"
        case .invalidNumber(let text):
            return "invalid number '\(text)': expected a decimal or 0x hexadecimal integer"
        case .numberTooLarge(let text, let max):
            return "number '\(text)' is too large (at most \(max), 0x\(String(max, radix: 16)))"
        case .invalidSize(let text):
            return "invalid size '\(text)': expected a number with an optional K, M, G or T suffix"
        case .expectedOnOff(let text):
            return "expected 'on' or 'off', got '\(text)'"
        case .invalidFormatCharacter(let c):
            return "invalid char in format: '\(c)' (use /{count}{x|d|u|o|c}{b|h|w|g})"
        case .disassemblyUnsupported:
            return "disassembly (format 'i') is not supported; use x, d, u, o or c"
        case .dumpTooLarge(let bytes, let max):
            return "memory dump of \(bytes) bytes is too large (at most \(max) bytes); lower the count"
        case .invalidCPUIndex(let available):
            return "invalid CPU index: this machine has \(available) vCPU(s), numbered from 0"
        case .cpuNotAvailable(let index):
            return "CPU#\(index) not available"
        case .rangeOverflow(let address, let size):
            return "range 0x\(String(address, radix: 16)) + \(size) bytes runs past the end of the address space"
        case .memoryNotReadable(let address, let size, let reason):
            return "cannot read guest memory 0x\(String(address, radix: 16))..+\(size) bytes: \(reason)"
        case .fileWriteFailed(let path, let reason):
            return "cannot write '\(path)': \(reason)"
        case .backendFailed(let command, let reason):
            return "\(command): \(reason)"
        }
    }

    static func errnoText(_ code: Int32) -> String {
        String(cString: strerror(code))
    }
}
