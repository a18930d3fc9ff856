/// One word of a command line and where it sits (UTF-8 byte offsets, as readline counts).
struct CommandToken: Equatable {
    var text: String
    /// Written in double quotes: never a flag or a format, whatever it contains.
    var quoted: Bool
    var start: Int
    var end: Int
}

/// Splits a monitor line into words the way QEMU's get_str does: words are separated by
/// blanks; a word that starts with `"` runs to the closing quote and understands the escapes
/// `\"`, `\\`, `\'`, `\n` and `\r`.
enum CommandLineTokenizer {
    /// Strict form for running lines: a bad escape or an open quote is an error.
    static func tokenize(_ line: String) throws -> [CommandToken] {
        try split(Array(line.utf8), lenient: false)
    }

    /// Forgiving form for completion, where the user is still typing the quoted word.
    static func tokenizeLeniently(_ bytes: [UInt8]) -> [CommandToken] {
        (try? split(bytes, lenient: true)) ?? []
    }

    static func isBlank(_ byte: UInt8) -> Bool {
        byte == 0x20 || (0x09...0x0d).contains(byte)
    }

    private static let quote = UInt8(ascii: "\"")
    private static let backslash = UInt8(ascii: "\\")

    private static func split(_ bytes: [UInt8], lenient: Bool) throws -> [CommandToken] {
        var tokens: [CommandToken] = []
        var index = 0
        while index < bytes.count {
            if isBlank(bytes[index]) {
                index += 1
                continue
            }
            let start = index
            var word: [UInt8] = []
            if bytes[index] == quote {
                index += 1
                var closed = false
                while index < bytes.count {
                    let byte = bytes[index]
                    if byte == quote {
                        index += 1
                        closed = true
                        break
                    }
                    if byte == backslash, index + 1 < bytes.count {
                        word.append(try unescape(bytes[index + 1], lenient: lenient))
                        index += 2
                        continue
                    }
                    word.append(byte)
                    index += 1
                }
                if !closed && !lenient { throw MonitorError.unterminatedQuote }
                tokens.append(CommandToken(text: String(decoding: word, as: UTF8.self), quoted: true,
                                           start: start, end: index))
            } else {
                while index < bytes.count, !isBlank(bytes[index]) {
                    word.append(bytes[index])
                    index += 1
                }
                tokens.append(CommandToken(text: String(decoding: word, as: UTF8.self), quoted: false,
                                           start: start, end: index))
            }
        }
        return tokens
    }

    private static func unescape(_ byte: UInt8, lenient: Bool) throws -> UInt8 {
        switch byte {
        case quote, backslash, UInt8(ascii: "'"): return byte
        case UInt8(ascii: "n"): return 0x0a
        case UInt8(ascii: "r"): return 0x0d
        default:
            if lenient { return byte }
            throw MonitorError.unsupportedEscape(Character(Unicode.Scalar(byte)))
        }
    }
}
