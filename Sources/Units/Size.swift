/// Why a size could not be read. Callers wrap it in their own error, with their own wording.
public enum SizeParseError: Error, Equatable, Sendable, CustomStringConvertible {
    case empty
    case negative
    /// The text does not start with a digit (or a `.` followed by one).
    case notANumber
    /// What follows the number is not one of the suffix letters B, K, M, G, T, P or E.
    case unknownSuffix(String)
    /// A fraction where the unit is one byte (`1.5`, `1.5B`): a fraction of a byte means nothing.
    case fractionOfAByte
    /// The size does not fit in 64 bits.
    case tooLarge

    public var description: String {
        switch self {
        case .empty: return "the size is empty"
        case .negative: return "a size cannot be negative"
        case .notANumber: return "a size starts with a decimal or 0x hexadecimal number"
        case .unknownSuffix(let suffix): return "unknown suffix '\(suffix)' (use B, K, M, G, T, P or E)"
        case .fractionOfAByte: return "a fraction needs a unit larger than a byte, such as 1.5K"
        case .tooLarge: return "the size does not fit in 64 bits"
        }
    }
}

/// Binary multipliers, as QEMU's `suffix_mul` gives them; letters in any case.
public enum SizeSuffix {
    public static func multiplier(_ letter: Character) -> UInt64? {
        switch letter {
        case "b", "B": return 1
        case "k", "K": return 1 << 10
        case "m", "M": return 1 << 20
        case "g", "G": return 1 << 30
        case "t", "T": return 1 << 40
        case "p", "P": return 1 << 50
        case "e", "E": return 1 << 60
        default: return nil
        }
    }
}

/// Reads a size the way QEMU's `qemu_strtosz` family does: a decimal or `0x` hexadecimal
/// integer, or a decimal fraction such as `1.5`, then at most one binary suffix letter
/// (B K M G T P E, any case). Without a suffix the number counts `defaultUnit` bytes
/// (QEMU's `-m 512` and `max-bandwidth 100` mean MiB; pass `1 << 20`). Fractions are exact in
/// 64.64 fixed point and rounded half up, as in QEMU.
///
/// Where this differs from QEMU, it is stricter or keeps what swiftkvm accepted before:
/// whitespace and a leading `+` are refused, and a hexadecimal number may carry a suffix
/// other than B and E (which are hex digits): `0x10K` is 16 KiB, as the monitor always read it.
///
/// Never traps, whatever the text: every failure is a `SizeParseError`.
public func parseSize(_ text: String, defaultUnit: UInt64) throws -> UInt64 {
    var scanner = SizeScanner(Array(text.utf8))
    return try scanner.parse(defaultUnit: defaultUnit)
}

/// Walks the UTF-8 bytes once; only ASCII digits count, so other scripts' digits are refused.
private struct SizeScanner {
    private let bytes: [UInt8]
    private var index = 0

    init(_ bytes: [UInt8]) { self.bytes = bytes }

    mutating func parse(defaultUnit: UInt64) throws -> UInt64 {
        guard !bytes.isEmpty else { throw SizeParseError.empty }
        if bytes[0] == UInt8(ascii: "-") { throw SizeParseError.negative }

        if hasHexPrefix {
            index = 2
            let whole = try digits(radix: 16)
            guard index > 2 else { throw SizeParseError.notANumber }
            if peek == UInt8(ascii: ".") { throw SizeParseError.unknownSuffix(rest) }
            return try scale(whole: whole, fraction: 0, hasFraction: false, defaultUnit: defaultUnit)
        }

        let whole = try digits(radix: 10)
        let wholeDigitCount = index
        var fraction: UInt64 = 0
        var hasFraction = false
        if peek == UInt8(ascii: ".") {
            index += 1
            let fractionStart = index
            while let byte = peek, isDecimal(byte) { index += 1 }
            hasFraction = bytes[fractionStart..<index].contains { $0 != UInt8(ascii: "0") }
            fraction = fixedPointFraction(bytes[fractionStart..<index])
            guard wholeDigitCount > 0 || index > fractionStart else { throw SizeParseError.notANumber }
        } else if wholeDigitCount == 0 {
            throw SizeParseError.notANumber
        }
        return try scale(whole: whole, fraction: fraction, hasFraction: hasFraction, defaultUnit: defaultUnit)
    }

    private var peek: UInt8? { index < bytes.count ? bytes[index] : nil }

    private var hasHexPrefix: Bool {
        bytes.count >= 2 && bytes[0] == UInt8(ascii: "0") && (bytes[1] == UInt8(ascii: "x") || bytes[1] == UInt8(ascii: "X"))
    }

    /// The text after the number, for error messages; `index` always sits on an ASCII byte
    /// or the end, so the split is on a character boundary.
    private var rest: String {
        String(decoding: bytes[index...], as: UTF8.self)
    }

    private mutating func digits(radix: UInt64) throws -> UInt64 {
        var value: UInt64 = 0
        while let byte = peek, let digit = digitValue(byte, radix: radix) {
            let (shifted, overflowA) = value.multipliedReportingOverflow(by: radix)
            let (sum, overflowB) = shifted.addingReportingOverflow(digit)
            if overflowA || overflowB { throw SizeParseError.tooLarge }
            value = sum
            index += 1
        }
        return value
    }

    /// The digits after the point as a fraction of 2^64, built from the last digit up so the
    /// only error is truncation below 2^-64 (QEMU goes through a double and is coarser).
    private func fixedPointFraction(_ digits: ArraySlice<UInt8>) -> UInt64 {
        var fraction: UInt64 = 0
        for byte in digits.reversed() {
            let digit = UInt64(byte - UInt8(ascii: "0"))
            fraction = UInt64(10).dividingFullWidth((high: digit, low: fraction)).quotient
        }
        return fraction
    }

    private mutating func scale(whole: UInt64, fraction: UInt64, hasFraction: Bool,
                                defaultUnit: UInt64) throws -> UInt64 {
        var unit = defaultUnit
        if let byte = peek {
            guard index + 1 == bytes.count, let multiplier = SizeSuffix.multiplier(Character(Unicode.Scalar(byte))) else {
                throw SizeParseError.unknownSuffix(rest)
            }
            unit = multiplier
            index += 1
        }
        if unit == 1 && hasFraction { throw SizeParseError.fractionOfAByte }

        let (wholeHigh, wholeLow) = whole.multipliedFullWidth(by: unit)
        let (fractionBytes, fractionRemainder) = fraction.multipliedFullWidth(by: unit)
        let roundUp: UInt64 = fractionRemainder >> 63
        let (withFraction, overflowA) = wholeLow.addingReportingOverflow(fractionBytes)
        let (rounded, overflowB) = withFraction.addingReportingOverflow(roundUp)
        if wholeHigh != 0 || overflowA || overflowB { throw SizeParseError.tooLarge }
        return rounded
    }

    private func isDecimal(_ byte: UInt8) -> Bool {
        byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9")
    }

    private func digitValue(_ byte: UInt8, radix: UInt64) -> UInt64? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return UInt64(byte - UInt8(ascii: "0"))
        case UInt8(ascii: "a")...UInt8(ascii: "f") where radix == 16: return UInt64(byte - UInt8(ascii: "a") + 10)
        case UInt8(ascii: "A")...UInt8(ascii: "F") where radix == 16: return UInt64(byte - UInt8(ascii: "A") + 10)
        default: return nil
        }
    }
}
