import Glibc
import SystemSupport

/// Everything that can go wrong running a monitor line. Usage errors get QEMU's
/// `Try "help CMD"` hint from the interpreter; the others describe a failed action.
public enum MonitorError: Error, Equatable, CustomStringConvertible, WrappingError {
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
    /// Reading guest memory for a dump failed; `cause` is the machine's error.
    case memoryNotReadable(address: UInt64, size: UInt64, cause: ErrorCause)
    /// The machine returned fewer bytes than asked, from `shortAt` on.
    case shortMemoryRead(address: UInt64, size: UInt64, shortAt: UInt64)
    case fileWriteFailed(path: String, cause: ReplacementFile.Failure)

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
        case .memoryNotReadable(let address, let size, let cause):
            return "cannot read guest memory 0x\(String(address, radix: 16))..+\(size) bytes: \(cause)"
        case .shortMemoryRead(let address, let size, let shortAt):
            return "cannot read guest memory 0x\(String(address, radix: 16))..+\(size) bytes: short read at 0x\(String(shortAt, radix: 16))"
        case .fileWriteFailed(let path, let cause):
            return "cannot write '\(path)': \(Errno.text(cause.errno))"
        }
    }

    public var underlying: (any Error)? {
        switch self {
        case .memoryNotReadable(_, _, let cause): return cause.error
        case .fileWriteFailed(_, let cause): return cause
        default: return nil
        }
    }
}
