/// Just enough of ACPI Machine Language (ACPI 6.5, chapter 20) to write a small DSDT: names,
/// integers, strings, packages, buffers, scopes and devices. Each function returns the
/// encoded bytes of one term.
enum AML {
    static let zeroOp: UInt8 = 0x00
    static let oneOp: UInt8 = 0x01
    static let nameOp: UInt8 = 0x08
    static let bytePrefix: UInt8 = 0x0a
    static let wordPrefix: UInt8 = 0x0b
    static let dwordPrefix: UInt8 = 0x0c
    static let stringPrefix: UInt8 = 0x0d
    static let scopeOp: UInt8 = 0x10
    static let bufferOp: UInt8 = 0x11
    static let packageOp: UInt8 = 0x12
    static let extOpPrefix: UInt8 = 0x5b
    static let deviceOp: UInt8 = 0x82
    static let rootChar: UInt8 = 0x5c  // '\'
    static let dualNamePrefix: UInt8 = 0x2e

    /// A NameString: '\' for the root, then one or two 4-character segments ("_SB_", "PWRB").
    static func nameString(_ path: String) -> [UInt8] {
        var out: [UInt8] = []
        var rest = Substring(path)
        if rest.hasPrefix("\\") { out.append(rootChar); rest = rest.dropFirst() }
        let segments = rest.split(separator: ".").map { seg -> [UInt8] in
            var bytes = Array(seg.utf8.prefix(4))
            while bytes.count < 4 { bytes.append(UInt8(ascii: "_")) }
            return bytes
        }
        switch segments.count {
        case 0: out.append(0)  // NullName
        case 1: out += segments[0]
        default:
            out.append(dualNamePrefix)
            out += segments[0] + segments[1]
        }
        return out
    }

    static func integer(_ value: UInt64) -> [UInt8] {
        switch value {
        case 0: return [zeroOp]
        case 1: return [oneOp]
        case ...0xff: return [bytePrefix, UInt8(value)]
        case ...0xffff: return [wordPrefix] + le(value, 2)
        case ...0xffff_ffff: return [dwordPrefix] + le(value, 4)
        default: return [0x0e] + le(value, 8)  // QWordPrefix
        }
    }

    static func string(_ s: String) -> [UInt8] { [stringPrefix] + Array(s.utf8) + [0] }

    static func name(_ path: String, _ value: [UInt8]) -> [UInt8] { [nameOp] + nameString(path) + value }

    static func package(_ elements: [[UInt8]]) -> [UInt8] {
        let body = [UInt8(elements.count)] + elements.flatMap { $0 }
        return [packageOp] + packageLength(body.count) + body
    }

    static func buffer(_ bytes: [UInt8]) -> [UInt8] {
        let body = integer(UInt64(bytes.count)) + bytes
        return [bufferOp] + packageLength(body.count) + body
    }

    static func scope(_ path: String, _ terms: [[UInt8]]) -> [UInt8] {
        let body = nameString(path) + terms.flatMap { $0 }
        return [scopeOp] + packageLength(body.count) + body
    }

    static func device(_ path: String, _ terms: [[UInt8]]) -> [UInt8] {
        let body = nameString(path) + terms.flatMap { $0 }
        return [extOpPrefix, deviceOp] + packageLength(body.count) + body
    }

    /// A compressed EISA id such as "PNP0501" as the 32-bit integer _HID takes.
    static func eisaID(_ id: String) -> [UInt8] {
        let c = Array(id.utf8)
        guard c.count == 7 else { return integer(0) }
        func letter(_ b: UInt8) -> UInt32 { UInt32(b - 0x40) & 0x1f }
        func hex(_ b: UInt8) -> UInt32 { UInt32(Int(String(UnicodeScalar(b)), radix: 16) ?? 0) }
        let v: UInt32 = letter(c[0]) << 26 | letter(c[1]) << 21 | letter(c[2]) << 16
            | hex(c[3]) << 12 | hex(c[4]) << 8 | hex(c[5]) << 4 | hex(c[6])
        // Stored big-endian in the integer's bytes.
        return [dwordPrefix] + [UInt8(v >> 24), UInt8(v >> 16 & 0xff), UInt8(v >> 8 & 0xff), UInt8(v & 0xff)]
    }

    /// PkgLength: one byte up to 63, otherwise a lead byte with the count of following bytes.
    /// The length counts itself.
    static func packageLength(_ bodyLength: Int) -> [UInt8] {
        if bodyLength + 1 < 0x40 { return [UInt8(bodyLength + 1)] }
        for extra in 1...3 {
            let total = bodyLength + 1 + extra
            if total < 1 << (4 + 8 * extra) {
                var bytes = [UInt8(extra << 6) | UInt8(total & 0xf)]
                for i in 0..<extra { bytes.append(UInt8(truncatingIfNeeded: total >> (4 + 8 * i))) }
                return bytes
            }
        }
        return []
    }

    // MARK: Resource descriptors (ACPI 6.5, 6.4) for _CRS buffers

    /// I/O port descriptor, 16-bit decode, fixed range.
    static func ioPort(_ base: UInt16, length: UInt8) -> [UInt8] {
        [0x47, 0x01] + le(UInt64(base), 2) + le(UInt64(base), 2) + [0x01, length]
    }

    /// IRQ descriptor without flags: edge-triggered, active-high, exclusive.
    static func irq(_ line: Int) -> [UInt8] { [0x22] + le(UInt64(1) << UInt64(line), 2) }

    static func resourceTemplate(_ descriptors: [[UInt8]]) -> [UInt8] {
        buffer(descriptors.flatMap { $0 } + [0x79, 0x00])  // End tag; checksum 0 means none
    }

    private static func le(_ v: UInt64, _ n: Int) -> [UInt8] { (0..<n).map { UInt8(truncatingIfNeeded: v >> (8 * $0)) } }
}
