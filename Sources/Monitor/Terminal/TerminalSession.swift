import CReadline
import Glibc
import Machine

/// The process's terminal when stdin is one: the monitor with line editing, the guest
/// console, or both sharing it the way QEMU's `-nographic` does (Ctrl-a c switches, Ctrl-a x
/// quits, Ctrl-a h helps).
final class TerminalSession {
    enum Role: Equatable {
        /// Guest console and monitor share the terminal.
        case shared(startInMonitor: Bool)
        case monitorOnly
        case consoleOnly
    }

    enum Focus: Equatable { case console, monitor }

    private let mode: TerminalMode
    private let role: Role
    private let editor: ReadlineEditor?
    private let guestInput: GuestInputQueue
    /// Ends the front end's loop with an exit status.
    private let finish: (Int32) -> Void
    private var decoder = EscapeKeyDecoder()
    private var tracker = OutputColumnTracker()
    private(set) var focus: Focus
    /// The status line on screen above the prompt, and when it was drawn.
    private var statusLine: String?
    private var statusDrawnAt: UInt64 = 0

    init(mode: TerminalMode, role: Role, prompt: String, historyPath: String?,
         execute: @escaping (String) -> CommandOutcome, completer: @escaping ReadlineEditor.Completer,
         guestInput: GuestInputQueue, finish: @escaping (Int32) -> Void) {
        self.mode = mode
        self.role = role
        self.guestInput = guestInput
        self.finish = finish
        switch role {
        case .shared(let startInMonitor): focus = startInMonitor ? .monitor : .console
        case .monitorOnly: focus = .monitor
        case .consoleOnly: focus = .console
        }
        editor = role == .consoleOnly ? nil
            : ReadlineEditor(prompt: prompt, historyPath: historyPath, completer: completer)
        editor?.onLine = { [unowned self] line in self.run(line, execute: execute) }
    }

    /// Ctrl-C reaches the guest when it shares the terminal, and ends the process otherwise.
    func start() {
        if case .shared = role { mode.enterRaw(keySignals: false) } else { mode.enterRaw(keySignals: true) }
        if focus == .monitor { editor?.install() }
    }

    func stop() {
        eraseStatusLine()
        editor?.remove()
        mode.restore()
    }

    var wantsInput: Bool { role != .consoleOnly || !guestInput.isFull }

    func handleInput(_ bytes: [UInt8]) {
        switch role {
        case .consoleOnly: guestInput.send(bytes)
        case .monitorOnly: feedEditor(bytes)
        case .shared:
            for action in decoder.feed(bytes) {
                switch action {
                case .forward(let keys):
                    if focus == .console { guestInput.send(keys) } else { feedEditor(keys) }
                case .switchFocus: switchFocus()
                case .help: show(Array(EscapeKeyDecoder.helpText.utf8))
                case .quit:
                    leaveEditorLine()
                    FileIO.writeAll(1, "swiftkvm: terminated\n")
                    finish(0)
                    return
                }
            }
        }
    }

    /// Guest console bytes or text that arrived on its own.
    func show(_ bytes: [UInt8]) {
        guard !bytes.isEmpty else { return }
        if let editor, editor.isInstalled {
            // The text takes the status line's row; the next `showStatus` puts it back below.
            editor.printAbove(bytes, tracker: &tracker, overStatusLine: statusLine != nil)
            statusLine = nil
        } else {
            FileIO.writeAll(1, bytes)
            tracker.append(bytes)
        }
    }

    /// Shows, redraws or (nil) removes the status line above the prompt. Only while the
    /// monitor has the terminal; redrawn at most every `LiveStatus.refreshMilliseconds`.
    func showStatus(_ text: String?) {
        guard let text, let editor, editor.isInstalled else { return eraseStatusLine() }
        guard text != statusLine else { return }
        let now = MonotonicClock.nanoseconds()
        if statusLine != nil && now - statusDrawnAt < UInt64(LiveStatus.refreshMilliseconds - 20) * 1_000_000 { return }
        editor.drawStatusLine(text, replacing: statusLine != nil)
        statusLine = text
        statusDrawnAt = now
    }

    private func eraseStatusLine() {
        guard statusLine != nil else { return }
        statusLine = nil
        if let editor, editor.isInstalled { editor.eraseStatusLine() }
    }

    /// Keys for the line editor. A key that ends the line (Enter, Ctrl-D) first takes the
    /// status line away: the accepted line stays on screen, and nothing may stay above it.
    private func feedEditor(_ keys: [UInt8]) {
        if statusLine != nil && keys.contains(where: { $0 == 0x0D || $0 == 0x0A || $0 == 0x04 }) { eraseStatusLine() }
        editor?.feed(keys)
    }

    private func switchFocus() {
        guard let editor else { return }
        switch focus {
        case .console:
            // The prompt goes on its own line; the tracker remembers the guest's unfinished one.
            if tracker.hasPartialLine { FileIO.writeAll(1, "\n") }
            focus = .monitor
            editor.install()
        case .monitor:
            eraseStatusLine()
            // Like QEMU: the prompt line stays and guest output goes on after it.
            tracker.setColumn(editor.visibleColumns)
            editor.remove()
            focus = .console
        }
    }

    /// Moves the cursor past the prompt (if shown) and any unfinished line, to print a last
    /// message on a line of its own.
    private func leaveEditorLine() {
        eraseStatusLine()
        if let editor, editor.isInstalled {
            tracker.setColumn(editor.visibleColumns)
            editor.remove()
        }
        if tracker.hasPartialLine { FileIO.writeAll(1, "\n") }
        tracker.reset()
    }

    private func run(_ line: String?, execute: (String) -> CommandOutcome) {
        // The accepted line ended where the cursor was; an unfinished line above is out of reach.
        tracker.reset()
        guard let line else {
            FileIO.writeAll(1, "\n")  // Ctrl-D on an empty line: QEMU's monitor ignores it too.
            return
        }
        let command = line.trimmingWhitespace()
        guard !command.isEmpty else { return }
        fflush(stdout)
        let outcome = execute(command)
        var text = outcome.output
        if let error = outcome.error { text += error.endingWithNewline() }
        FileIO.writeAll(1, text)
        if outcome.quit {
            editor?.remove()
            finish(0)
        }
    }
}
