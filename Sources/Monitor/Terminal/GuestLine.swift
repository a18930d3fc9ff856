/// The guest console's unfinished last line: the bytes since its last LF, kept so the terminal
/// can take the line off the screen and draw it again (above the monitor prompt, or after a
/// monitor line printed in its place) without losing or splitting it.
///
/// A line can be drawn again only when its rows can be counted exactly: printable text, SGR
/// colour sequences (no width), CR, BS, TAB and BEL. Anything else (cursor movement, other
/// control bytes) or a very long line makes it `stuck`: it stays where it is on screen and
/// whatever follows it starts on a row of its own.
public struct GuestLine: Equatable {
    /// Longest line kept for drawing again; longer ones are left where they are.
    public static let maxRedrawBytes = 4096

    public enum State: Equatable {
        /// The last guest byte ended a line (or nothing came yet).
        case empty
        /// An unfinished line that can be drawn again.
        case redrawable([UInt8])
        /// An unfinished line that cannot: the cursor stands somewhere after it.
        case stuck
    }

    public private(set) var state: State = .empty

    public init() {}

    public var isEmpty: Bool { state == .empty }

    /// The line's bytes when it can be drawn again and is not empty.
    public var redrawableBytes: [UInt8]? {
        if case .redrawable(let bytes) = state { return bytes }
        return nil
    }

    /// Takes guest output: what follows its last LF is the new unfinished line.
    public mutating func append(_ chunk: [UInt8]) {
        var tail = chunk[...]
        if let lastNewline = chunk.lastIndex(of: UInt8(ascii: "\n")) {
            tail = chunk[chunk.index(after: lastNewline)...]
            state = .empty
        }
        guard !tail.isEmpty else { return }
        switch state {
        case .stuck: return
        case .empty: state = .redrawable([])
        case .redrawable: break
        }
        guard case .redrawable(var bytes) = state else { return }
        bytes.append(contentsOf: tail)
        state = bytes.count <= Self.maxRedrawBytes && Self.rows(of: bytes, columns: 1 << 20) != nil
            ? .redrawable(bytes) : .stuck
    }

    /// The cursor was put on a fresh row by other means (the line stays on screen as it is).
    public mutating func abandon() { state = .empty }

    /// Rows `bytes` take on a terminal `columns` wide when drawn from the start of a row (the
    /// cursor then stands on the last of them); nil when that cannot be known.
    public static func rows(of bytes: [UInt8], columns: Int) -> Int? {
        let width = max(columns, 1)
        var row = 0, column = 0
        var index = 0
        while index < bytes.count {
            let byte = bytes[index]
            index += 1
            switch byte {
            case UInt8(ascii: "\r"): column = 0
            case 0x08: column = max(min(column, width - 1) - 1, 0)
            case UInt8(ascii: "\t"): if column < width { column = min((column / 8 + 1) * 8, width - 1) }
            case 0x07, 0x7F: break
            case 0x1B:
                // Only SGR (ESC [ digits and ; m) has no effect on where text goes.
                guard index < bytes.count, bytes[index] == UInt8(ascii: "[") else { return nil }
                index += 1
                while index < bytes.count, bytes[index] == UInt8(ascii: ";") || (0x30...0x39).contains(bytes[index]) {
                    index += 1
                }
                guard index < bytes.count, bytes[index] == UInt8(ascii: "m") else { return nil }
                index += 1
            case 0x80...0xBF: break  // UTF-8 continuation byte: same character
            case 0x20...0xFF:
                // The terminal wraps when a character comes after the last column was filled.
                if column == width { row += 1; column = 0 }
                column += 1
            default: return nil
            }
        }
        return row + 1
    }
}
