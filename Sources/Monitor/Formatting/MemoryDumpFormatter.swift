/// Renders guest memory the way QEMU's `memory_dump` does (monitor/hmp-cmds-target.c):
/// `ADDRESS: item item ...`, 8 bytes a line for byte items and 16 bytes a line otherwise.
public enum MemoryDumpFormatter {
    /// Reads `count` bytes at an address, or throws when they cannot be read.
    public typealias Reader = (_ address: UInt64, _ count: Int) throws -> [UInt8]

    /// Dumps `format.count` items from `address`. Reads one line at a time; a line that cannot
    /// be read ends the dump with QEMU's ` Cannot access memory`.
    public static func dump(_ format: MemoryDumpFormat, at address: UInt64, read: Reader) -> String {
        var remaining = format.count * format.unitSize
        let lineSize = format.unitSize == 1 ? 8 : 16
        // QEMU prints characters one byte at a time whatever size was asked for, but keeps the
        // line length and total length the size implied.
        let itemSize = format.style == .character ? 1 : format.unitSize
        var output = ""
        var lineAddress = address
        while remaining > 0 {
            output += Pad.hex(lineAddress, 16) + ":"
            let length = min(remaining, lineSize)
            guard let bytes = try? read(lineAddress, length), bytes.count >= length else {
                output += " Cannot access memory\n"
                break
            }
            var offset = 0
            while offset + itemSize <= length {
                let value = littleEndian(bytes[offset..<offset + itemSize])
                output += " " + item(value, style: format.style, size: itemSize)
                offset += itemSize
            }
            output += "\n"
            lineAddress &+= UInt64(length)
            remaining -= length
        }
        return output
    }

    static func item(_ value: UInt64, style: MemoryDumpFormat.Style, size: Int) -> String {
        let bits = size * 8
        switch style {
        case .hex, .instruction:
            return "0x" + Pad.hex(value, bits / 4)
        case .octal:
            // `%#*o`: a leading 0 on non-zero values, right-aligned.
            let digits = value == 0 ? "0" : "0" + String(value, radix: 8)
            return Pad.left(digits, (bits + 2) / 3)
        case .unsigned:
            return Pad.left(String(value), (bits * 10 + 32) / 33)
        case .signed:
            // QEMU loads items zero-extended, so only 8-byte items ever print negative.
            return Pad.left(String(Int64(bitPattern: value)), (bits * 10 + 32) / 33)
        case .character:
            return character(UInt8(truncatingIfNeeded: value))
        }
    }

    /// QEMU's monitor_printc: the byte in single quotes, escaped when not printable.
    static func character(_ byte: UInt8) -> String {
        let body: String
        switch byte {
        case UInt8(ascii: "'"): body = "\\'"
        case UInt8(ascii: "\\"): body = "\\\\"
        case 0x0a: body = "\\n"
        case 0x0d: body = "\\r"
        case 32...126: body = String(Character(Unicode.Scalar(byte)))
        default: body = "\\x" + Pad.hex(UInt64(byte), 2)
        }
        return "'" + body + "'"
    }

    private static func littleEndian(_ bytes: ArraySlice<UInt8>) -> UInt64 {
        bytes.reversed().reduce(0) { ($0 << 8) | UInt64($1) }
    }
}
