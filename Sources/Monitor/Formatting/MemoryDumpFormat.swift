/// The `/{count}{format}{size}` argument of `x` and `xp`, as QEMU's monitor parses it.
public struct MemoryDumpFormat: Equatable, Sendable {
    public enum Style: Character, Sendable {
        case hex = "x"
        case signed = "d"
        case unsigned = "u"
        case octal = "o"
        case character = "c"
        case instruction = "i"
    }

    public var count: Int
    public var style: Style
    /// Bytes per item: 1 (b), 2 (h), 4 (w) or 8 (g).
    public var unitSize: Int

    public init(count: Int = 1, style: Style = .hex, unitSize: Int = 4) {
        self.count = count
        self.style = style
        self.unitSize = unitSize
    }

    /// QEMU's count is a C int; more than this is a typo, not a request.
    public static let maxCount = Int(Int32.max)

    /// Parses the text after `/`. Letters may come in any order and the last of each kind
    /// wins; what is not given comes from `previous` (QEMU remembers the last format and size).
    public static func parse(_ text: Substring, previous: MemoryDumpFormat) throws -> MemoryDumpFormat {
        var result = MemoryDumpFormat(count: 1, style: previous.style, unitSize: previous.unitSize)
        var rest = text
        let digits = rest.prefix { $0.isASCII && $0.isNumber }
        if !digits.isEmpty {
            guard let count = Int(digits), count <= maxCount else {
                throw MonitorError.numberTooLarge(String(digits), max: UInt64(maxCount))
            }
            result.count = count
            rest = rest.dropFirst(digits.count)
        }
        for letter in rest {
            if let style = Style(rawValue: letter) {
                result.style = style
            } else if let size = unitSize(for: letter) {
                result.unitSize = size
            } else {
                throw MonitorError.invalidFormatCharacter(letter)
            }
        }
        return result
    }

    private static func unitSize(for letter: Character) -> Int? {
        switch letter {
        case "b": return 1
        case "h": return 2
        case "w": return 4
        case "g", "L": return 8
        default: return nil
        }
    }
}
