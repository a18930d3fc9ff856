/// Why a size could not be read.
enum SizeError: Error, Equatable {
    case empty
    case negative
    case notANumber
    case unknownSuffix
    case tooLarge
}

/// Reads a size such as `512`, `64K`, `2M` or `1G` (suffixes are binary and case-insensitive;
/// `B` means bytes). A bare number is in `defaultUnit` bytes, as QEMU reads `-m 512` as MiB.
/// Never traps: anything that does not fit in 64 bits is `tooLarge`.
func parseSize(_ text: String, defaultUnit: UInt64) throws -> UInt64 {
    guard !text.isEmpty else { throw SizeError.empty }
    if text.hasPrefix("-") { throw SizeError.negative }
    let digits = text.prefix(while: { $0.isASCII && $0.isNumber })
    guard !digits.isEmpty else { throw SizeError.notANumber }
    let suffix = text.dropFirst(digits.count)

    let unit: UInt64
    switch suffix.uppercased() {
    case "": unit = defaultUnit
    case "B": unit = 1
    case "K": unit = 1 << 10
    case "M": unit = 1 << 20
    case "G": unit = 1 << 30
    case "T": unit = 1 << 40
    default: throw SizeError.unknownSuffix
    }

    var number: UInt64 = 0
    for digit in digits.utf8 {
        let (timesTen, overflowA) = number.multipliedReportingOverflow(by: 10)
        let (sum, overflowB) = timesTen.addingReportingOverflow(UInt64(digit - UInt8(ascii: "0")))
        if overflowA || overflowB { throw SizeError.tooLarge }
        number = sum
    }
    let (bytes, overflow) = number.multipliedReportingOverflow(by: unit)
    if overflow { throw SizeError.tooLarge }
    return bytes
}
