/// The one writer of an interactive terminal: guest console bytes, lines the monitor prints on
/// its own (migration progress, events, Ctrl-a h), command output, the live status line and
/// the line editor all reach the screen through it, so it always knows what the bottom rows
/// hold and nothing is lost, overwritten or glued together.
///
/// What it keeps on screen, from the top:
/// - lines that are finished: never touched again;
/// - the guest's unfinished line (`GuestLine`), when there is one;
/// - with the monitor focused: the live status line, if any, and the editor's prompt and text.
///
/// Those last rows are "floating": to print anything else, the writer takes them off the
/// screen, prints the finished lines, and draws them again below. With the guest console
/// focused the guest's unfinished line is where the cursor is and the guest continues it;
/// a monitor line is printed in its place and the unfinished line drawn again after it.
/// A line that cannot be drawn again (see `GuestLine`) stays where it is and what follows
/// starts on a row of its own: nothing is lost, the line is only broken.
public final class TerminalScreen {
    public enum Focus: Equatable { case console, monitor }

    private let output: TerminalOutput
    private let editor: LineEditorView?
    private let banner: String?
    public private(set) var focus: Focus
    private var guestLine = GuestLine()
    /// Rows of the guest's unfinished line drawn above the status line and the editor (monitor
    /// focus); 0 while it is not drawn there.
    private var guestRowsAboveEditor = 0
    public private(set) var status: String?
    private var statusDrawn = false
    private var bannerShown = false
    /// After `leave`: the process is on its way out and the guest's output is no longer shown.
    private var hasLeft = false

    /// `banner`: printed the first time the monitor gets the focus, as QEMU does.
    public init(output: TerminalOutput, editor: LineEditorView?, focus: Focus, banner: String? = nil) {
        self.output = output
        self.editor = editor
        self.focus = editor == nil ? .console : focus
        self.banner = banner
    }

    /// Shows the monitor when it has the focus from the start.
    public func start() {
        if focus == .monitor { showMonitor() }
    }

    // MARK: What arrives

    /// Bytes from the guest's serial port.
    public func guestOutput(_ bytes: [UInt8]) {
        guard !bytes.isEmpty, !hasLeft else { return }
        guard monitorShown else {
            output.write(bytes)
            guestLine.append(bytes)
            return
        }
        hideFloating()
        var text = guestLine.redrawableBytes ?? []
        text += bytes
        guestLine.append(bytes)
        if guestLine.redrawableBytes == nil {
            // Finished lines only, or an unfinished line that cannot be drawn again: it stays
            // as printed and the prompt goes below it.
            if !guestLine.isEmpty { text.append(UInt8(ascii: "\n")); guestLine.abandon() }
            output.write(text)
        } else if let lastNewline = text.lastIndex(of: UInt8(ascii: "\n")) {
            output.write(Array(text[...lastNewline]))
        }
        drawFloating()
    }

    /// Whole lines the monitor prints on its own: each is printed in one piece, on rows of
    /// its own, above whatever is floating.
    public func monitorLines(_ text: String) {
        guard !text.isEmpty else { return }
        let lines = Array(text.endingWithNewline().utf8)
        guard !hasLeft else { return output.write(lines) }
        switch focus {
        case .monitor:
            guard monitorShown else { return output.write(lines) }
            hideFloating()
            output.write(lines)
            drawFloating()
        case .console:
            takeGuestLineFromCursor()
            output.write(lines)
            drawGuestLine(thenNewline: false)
        }
    }

    /// Shows, replaces or (nil) removes the live status line above the prompt; only while the
    /// monitor has the focus.
    public func setStatus(_ text: String?) {
        guard monitorShown else { status = nil; return }
        guard text != status else { return }
        hideFloating()
        status = text
        drawFloating()
    }

    /// Output of a command the editor just accepted: the cursor is on the row after its line.
    public func commandOutput(_ text: String) {
        guard !text.isEmpty else { return }
        output.write(Array(text.endingWithNewline().utf8))
    }

    // MARK: Keys for the editor

    /// Before keys go to the editor: when they may make it print lines of its own (Enter,
    /// Ctrl-D, completion lists, a cleared screen), the floating rows above it go away first,
    /// so what it prints is not put between them and the prompt. `afterEditorKeys` brings
    /// them back.
    public func beforeEditorKeys(_ keys: [UInt8]) {
        guard monitorShown, guestRowsAboveEditor > 0 || statusDrawn,
              keys.contains(where: Self.keysThatMayPrint.contains) else { return }
        hideFloating()
        editor?.redraw()
    }

    public func afterEditorKeys() {
        guard monitorShown, guestRowsAboveEditor == 0, !statusDrawn,
              guestLine.redrawableBytes != nil || status != nil else { return }
        editor?.erase()
        drawFloating()
    }

    /// Enter, Ctrl-D, Tab (a list of completions), Ctrl-L, ESC (meta keys such as M-?).
    private static let keysThatMayPrint: Set<UInt8> = [0x0D, 0x0A, 0x04, 0x09, 0x0C, 0x1B]

    // MARK: Focus

    public func switchFocus() {
        guard let editor else { return }
        switch focus {
        case .console:
            takeGuestLineFromCursor()
            focus = .monitor
            showMonitor()
        case .monitor:
            // Like QEMU, the prompt line stays on screen; the guest's line goes on below it.
            if editor.isInstalled {
                hideFloating()
                output.write(Array((editor.visibleLine + "\n").utf8))
                editor.remove()
            }
            status = nil
            focus = .console
            drawGuestLine(thenNewline: false)
        }
    }

    /// Takes the editor and status line away and leaves the cursor at the start of a fresh
    /// row below everything printed, for a last message or the shell. Guest output that
    /// comes after is not shown; monitor lines still are, each on rows of its own.
    public func leave() {
        guard !hasLeft else { return }
        hasLeft = true
        if focus == .monitor {
            if monitorShown { hideFloating() }
            editor?.remove()
            drawGuestLine(thenNewline: true)
        } else if !guestLine.isEmpty {
            output.write([UInt8(ascii: "\n")])
        }
        guestLine.abandon()
        status = nil
    }

    // MARK: Drawing

    private var monitorShown: Bool { focus == .monitor && (editor?.isInstalled ?? false) }

    private func showMonitor() {
        if let banner, !bannerShown {
            bannerShown = true
            output.write(Array((banner + "\n").utf8))
        }
        drawFloating()
    }

    /// Draws, from the cursor's empty row, the guest's unfinished line, the status line and the
    /// editor.
    private func drawFloating() {
        drawGuestLine(thenNewline: true)
        if let status {
            output.write(Array((LiveStatus.fitted(status, columns: output.columns) + "\n").utf8))
            statusDrawn = true
        }
        guard let editor else { return }
        if editor.isInstalled { editor.redraw() } else { editor.install() }
    }

    /// Takes the floating rows off the screen; the cursor ends at the start of the first,
    /// which is empty, as is everything below it.
    private func hideFloating() {
        editor?.erase()
        let rows = guestRowsAboveEditor + (statusDrawn ? 1 : 0)
        if rows > 0 { output.write(Array("\u{1B}[\(rows)A\r\u{1B}[J".utf8)) }
        guestRowsAboveEditor = 0
        statusDrawn = false
    }

    /// Draws the guest's unfinished line from the start of the cursor's row: above the editor
    /// (`thenNewline`), or where the guest continues it.
    private func drawGuestLine(thenNewline: Bool) {
        guard let bytes = guestLine.redrawableBytes else { return }
        output.write(thenNewline ? bytes + [UInt8(ascii: "\n")] : bytes)
        if thenNewline { guestRowsAboveEditor = GuestLine.rows(of: bytes, columns: output.columns) ?? 1 }
    }

    /// Guest console focused: takes the guest's unfinished line off the cursor's rows (or, when
    /// it cannot be drawn again, moves to the next row), leaving the cursor at the start of an
    /// empty row.
    private func takeGuestLineFromCursor() {
        switch guestLine.state {
        case .empty: return
        case .stuck:
            output.write([UInt8(ascii: "\n")])
            guestLine.abandon()
        case .redrawable(let bytes):
            let up = (GuestLine.rows(of: bytes, columns: output.columns) ?? 1) - 1
            output.write(Array(((up > 0 ? "\u{1B}[\(up)A" : "") + "\r\u{1B}[J").utf8))
        }
    }
}
