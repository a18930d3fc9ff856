import Units

/// A parsed argument value, typed by its spec's kind.
public enum ArgumentValue: Equatable, Sendable {
    case string(String)
    case integer(UInt64)
    case bool(Bool)
    case memoryFormat(MemoryDumpFormat)
}

/// The typed arguments of one command line, by spec name. Optional arguments that were not
/// given are absent; flags that were not given read as false.
public struct MonitorArguments: Equatable, Sendable {
    public var command: String
    public var values: [String: ArgumentValue]

    public init(command: String, values: [String: ArgumentValue] = [:]) {
        self.command = command
        self.values = values
    }

    public func has(_ name: String) -> Bool { values[name] != nil }

    /// A string or filename argument; throws when a required one is missing.
    public func string(_ name: String) throws -> String {
        guard let value = optionalString(name) else { throw missing(name) }
        return value
    }

    public func optionalString(_ name: String) -> String? {
        if case .string(let value)? = values[name] { return value }
        return nil
    }

    /// An integer, address or size argument.
    public func integer(_ name: String) throws -> UInt64 {
        guard let value = optionalInteger(name) else { throw missing(name) }
        return value
    }

    public func optionalInteger(_ name: String) -> UInt64? {
        if case .integer(let value)? = values[name] { return value }
        return nil
    }

    /// An on/off argument or a flag; absent reads as false.
    public func bool(_ name: String) -> Bool {
        if case .bool(let value)? = values[name] { return value }
        return false
    }

    public func flag(_ letter: Character) -> Bool { bool(String(letter)) }

    public func memoryFormat(_ name: String = "fmt") -> MemoryDumpFormat? {
        if case .memoryFormat(let value)? = values[name] { return value }
        return nil
    }

    private func missing(_ name: String) -> MonitorError {
        .missingArgument(command: command, argument: name)
    }
}

extension MonitorArguments {
    /// Parses a decimal or `0x` hexadecimal integer no larger than `max`.
    public static func parseInteger(_ text: String, max: UInt64 = .max) throws -> UInt64 {
        let (digits, radix) = splitRadix(text)
        guard !digits.isEmpty, digits.allSatisfy({ isDigit($0, radix: radix) }) else {
            throw MonitorError.invalidNumber(text)
        }
        guard let value = UInt64(digits, radix: radix), value <= max else {
            throw MonitorError.numberTooLarge(text, max: max)
        }
        return value
    }

    /// Parses a byte count with `Units.parseSize` (decimal, `0x` hex or a fraction such as
    /// `1.5G`; suffixes B K M G T P E, powers of 1024). A bare number counts `defaultUnit`
    /// bytes (QEMU's `max-bandwidth` takes a bare number as MiB: pass 1 << 20).
    public static func parseSize(_ text: String, defaultUnit: UInt64 = 1) throws -> UInt64 {
        do {
            return try Units.parseSize(text, defaultUnit: defaultUnit)
        } catch SizeParseError.tooLarge {
            throw MonitorError.numberTooLarge(text, max: .max)
        } catch {
            throw MonitorError.invalidSize(text)
        }
    }

    static func parseOnOff(_ text: String) throws -> Bool {
        switch text {
        case "on": return true
        case "off": return false
        default: throw MonitorError.expectedOnOff(text)
        }
    }

    /// ASCII only: Unicode's other digits are not numbers to the monitor.
    private static func isDigit(_ c: Character, radix: Int) -> Bool {
        guard let ascii = c.asciiValue else { return false }
        switch ascii {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return true
        case UInt8(ascii: "a")...UInt8(ascii: "f"), UInt8(ascii: "A")...UInt8(ascii: "F"): return radix == 16
        default: return false
        }
    }

    private static func splitRadix(_ text: String) -> (Substring, Int) {
        if text.hasPrefix("0x") || text.hasPrefix("0X") { return (text.dropFirst(2), 16) }
        return (Substring(text), 10)
    }
}
