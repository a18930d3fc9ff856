import XCTest
@testable import Monitor

/// A terminal emulator of the sequences the front end writes (printable ASCII, CR, LF with
/// output processing on, BS, TAB, ESC [ n A / C / K / J / m), with unlimited history: every
/// row that was ever on screen stays in `rows`, as tmux's history keeps it.
final class FakeTerminal: TerminalOutput {
    let columns: Int
    let height: Int
    private(set) var rows: [[Character]] = [[]]
    /// `continued[r]`: row r holds the rest of row r-1, which was full (a soft wrap).
    private var continued: [Bool] = [false]
    private(set) var cursorRow = 0
    /// 0...columns; `columns` means the last column was written and the next character wraps.
    private(set) var cursorColumn = 0
    private var pendingEscape: [UInt8]?

    init(columns: Int = 120, height: Int = 40) {
        self.columns = columns
        self.height = height
    }

    func write(_ bytes: [UInt8]) {
        for byte in bytes { take(byte) }
    }

    /// Every row, trailing blanks cut, without the empty rows at the end.
    var lines: [String] {
        var all = rows.map { String($0).replacingOccurrences(of: "\\s+$", with: "", options: .regularExpression) }
        while all.last == "" { all.removeLast() }
        return all
    }

    /// Rows joined where the terminal wrapped them, as a person reads them.
    var logicalLines: [String] {
        var result: [String] = []
        for (index, row) in rows.enumerated() {
            let text = String(row)
            if continued[index], !result.isEmpty { result[result.count - 1] += text } else { result.append(text) }
        }
        let trimmed = result.map { $0.replacingOccurrences(of: "\\s+$", with: "", options: .regularExpression) }
        return Array(trimmed.reversed().drop(while: { $0.isEmpty }).reversed())
    }

    /// The row the cursor is on, trailing blanks cut.
    var cursorLine: String {
        String(rows[cursorRow]).replacingOccurrences(of: "\\s+$", with: "", options: .regularExpression)
    }

    private var screenTop: Int { max(0, rows.count - height) }

    private func take(_ byte: UInt8) {
        if var escape = pendingEscape {
            escape.append(byte)
            if escape.count == 1 {
                guard byte == UInt8(ascii: "[") else { XCTFail("unexpected ESC \(byte)"); pendingEscape = nil; return }
                pendingEscape = escape
            } else if (0x40...0x7E).contains(byte) {
                pendingEscape = nil
                perform(csi: escape.dropFirst().dropLast(), final: byte)
            } else {
                pendingEscape = escape
            }
            return
        }
        switch byte {
        case 0x1B: pendingEscape = []
        case UInt8(ascii: "\r"): cursorColumn = 0
        case UInt8(ascii: "\n"): cursorColumn = 0; lineFeed()
        case 0x08: cursorColumn = max(min(cursorColumn, columns - 1) - 1, 0)
        case UInt8(ascii: "\t"): if cursorColumn < columns { cursorColumn = min((cursorColumn / 8 + 1) * 8, columns - 1) }
        case 0x07, 0x7F: break
        case 0x20...0x7E:
            if cursorColumn == columns {
                lineFeed()
                continued[cursorRow] = true
                cursorColumn = 0
            }
            while rows[cursorRow].count <= cursorColumn { rows[cursorRow].append(" ") }
            rows[cursorRow][cursorColumn] = Character(UnicodeScalar(byte))
            cursorColumn += 1
        default: XCTFail("unexpected byte \(byte)")
        }
    }

    private func lineFeed() {
        cursorRow += 1
        if cursorRow == rows.count { rows.append([]); continued.append(false) }
    }

    private func perform(csi parameters: ArraySlice<UInt8>, final: UInt8) {
        let count = Int(String(decoding: parameters, as: UTF8.self)) ?? 1
        switch final {
        case UInt8(ascii: "A"):
            cursorRow = max(cursorRow - max(count, 1), screenTop)
            cursorColumn = min(cursorColumn, columns - 1)
        case UInt8(ascii: "C"): cursorColumn = min(min(cursorColumn, columns - 1) + max(count, 1), columns - 1)
        case UInt8(ascii: "K"): eraseRow(from: cursorColumn)
        case UInt8(ascii: "J"):
            eraseRow(from: cursorColumn)
            for below in rows.indices where below > cursorRow { rows[below] = []; continued[below] = false }
        case UInt8(ascii: "m"): break
        default: XCTFail("unexpected CSI \(final)")
        }
    }

    private func eraseRow(from column: Int) {
        if rows[cursorRow].count > column { rows[cursorRow].removeSubrange(min(column, columns)...) }
        if column == 0 { continued[cursorRow] = false }
    }
}

/// A one-line editor drawn on a `FakeTerminal` the way readline draws its prompt and line.
final class FakeLineEditor: LineEditorView {
    let terminal: FakeTerminal
    let prompt = "(monitor) "
    private(set) var isInstalled = false
    private(set) var text = ""

    init(terminal: FakeTerminal) { self.terminal = terminal }

    func install() {
        isInstalled = true
        text = ""
        terminal.write(Array(prompt.utf8))
    }

    func remove() { isInstalled = false; text = "" }

    func erase() {
        let count = visibleLine.count
        let up = count == 0 ? 0 : (count - 1) / terminal.columns
        terminal.write(Array(((up > 0 ? "\u{1B}[\(up)A" : "") + "\r\u{1B}[J").utf8))
    }

    func redraw() { terminal.write(Array(visibleLine.utf8)) }

    var visibleLine: String { prompt + text }

    func type(_ keys: String) {
        text += keys
        terminal.write(Array(keys.utf8))
    }

    /// Enter: the line ends where the cursor is, the handler runs, a fresh prompt follows.
    func enter(_ handler: (String) -> Void) {
        let line = text
        terminal.write(Array("\n".utf8))
        text = ""
        handler(line)
        if isInstalled { terminal.write(Array(prompt.utf8)) }
    }
}
