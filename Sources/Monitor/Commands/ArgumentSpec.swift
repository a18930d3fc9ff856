/// The kinds of argument a command can take; each kind has one parser and one completion rule.
public enum ArgumentKind: Equatable, Sendable {
    /// Any word (quoted words may contain spaces).
    case string
    /// A path on the host; completion falls back to file names.
    case filename
    /// An unsigned integer, decimal or `0x` hex, at most `max`.
    case integer(max: UInt64)
    /// A guest address: an integer over the whole 64-bit range.
    case address
    /// A byte count with an optional B/K/M/G/T/P/E suffix (powers of 1024), as `Units.parseSize` reads it.
    case size
    /// `on` or `off`.
    case onOff
    /// A switch such as `-d`; present or absent, never required.
    case flag(Character)
    /// The `/{count}{format}{size}` argument of `x` and `xp`; optional, defaults as in QEMU.
    case memoryFormat

    public static let integer = ArgumentKind.integer(max: UInt64.max)
}

public struct ArgumentSpec: Equatable, Sendable {
    /// Key under which the parsed value is stored, and the word `help` shows.
    public var name: String
    public var kind: ArgumentKind
    public var optional: Bool
    /// Words tab completion offers for this argument (migration parameter names); when empty,
    /// the kind decides (on/off, file names, nothing).
    public var completions: [String]

    public init(_ name: String, _ kind: ArgumentKind, optional: Bool = false, completions: [String] = []) {
        self.name = name
        self.kind = kind
        self.optional = optional
        self.completions = completions
    }

    public static func flag(_ letter: Character, name: String? = nil) -> ArgumentSpec {
        ArgumentSpec(name ?? String(letter), .flag(letter), optional: true)
    }

    /// QEMU-style parameter text: `[-d] uri`, `/fmt addr`, `[cmd]`.
    static func synopsis(of arguments: [ArgumentSpec]) -> String {
        arguments.map { spec -> String in
            switch spec.kind {
            case .flag(let letter): return "[-\(letter)]"
            case .memoryFormat: return "/fmt"
            default: return spec.optional ? "[\(spec.name)]" : spec.name
            }
        }.joined(separator: " ")
    }
}
