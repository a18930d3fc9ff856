/// Turns the words after a command name into typed arguments, following the command's specs.
struct ArgumentParser {
    /// Name used in error messages (`x`, `info registers`).
    var command: String
    var specs: [ArgumentSpec]
    /// Format and size the previous `x`/`xp` used; QEMU's defaults when none came before.
    var previousDumpFormat: MemoryDumpFormat

    /// The format a `/fmt` argument in this line set, to remember for the next dump.
    private(set) var dumpFormatUsed: MemoryDumpFormat?

    init(command: String, specs: [ArgumentSpec], previousDumpFormat: MemoryDumpFormat) {
        self.command = command
        self.specs = specs
        self.previousDumpFormat = previousDumpFormat
    }

    mutating func parse(_ tokens: ArraySlice<CommandToken>) throws -> MonitorArguments {
        var arguments = MonitorArguments(command: command)
        var rest = tokens
        var specIndex = 0
        while specIndex < specs.count {
            let spec = specs[specIndex]
            if case .flag = spec.kind {
                // A run of flags may be given in any order, each at most once.
                let group = specs[specIndex...].prefix { if case .flag = $0.kind { return true } else { return false } }
                while let token = rest.first, let match = group.first(where: { Self.isFlag(token, $0) }),
                      !arguments.has(match.name) {
                    arguments.values[match.name] = .bool(true)
                    rest = rest.dropFirst()
                }
                specIndex += group.count
                continue
            }
            specIndex += 1
            if spec.kind == .memoryFormat {
                var format = MemoryDumpFormat(count: 1, style: previousDumpFormat.style, unitSize: previousDumpFormat.unitSize)
                if let token = rest.first, !token.quoted, token.text.hasPrefix("/") {
                    format = try MemoryDumpFormat.parse(token.text.dropFirst(), previous: previousDumpFormat)
                    dumpFormatUsed = format
                    rest = rest.dropFirst()
                }
                arguments.values[spec.name] = .memoryFormat(format)
                continue
            }
            guard let token = rest.first else {
                if spec.optional { continue }
                throw MonitorError.missingArgument(command: command, argument: spec.name)
            }
            arguments.values[spec.name] = try Self.value(of: token.text, as: spec.kind)
            rest = rest.dropFirst()
        }
        if let extra = rest.first {
            throw MonitorError.extraArguments(command: command, text: extra.text)
        }
        return arguments
    }

    static func isFlag(_ token: CommandToken, _ spec: ArgumentSpec) -> Bool {
        guard case .flag(let letter) = spec.kind, !token.quoted else { return false }
        return token.text == "-\(letter)"
    }

    static func value(of text: String, as kind: ArgumentKind) throws -> ArgumentValue {
        switch kind {
        case .string, .filename:
            return .string(text)
        case .integer(let max):
            return .integer(try MonitorArguments.parseInteger(text, max: max))
        case .address:
            return .integer(try MonitorArguments.parseInteger(text))
        case .size:
            return .integer(try MonitorArguments.parseSize(text))
        case .onOff:
            return .bool(try MonitorArguments.parseOnOff(text))
        case .flag:
            return .bool(true)
        case .memoryFormat:
            return .memoryFormat(try MemoryDumpFormat.parse(Substring(text.drop { $0 == "/" }), previous: MemoryDumpFormat()))
        }
    }
}
