import CReadline
import Glibc
import Machine
import SystemSupport

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

    private let mode: TerminalMode
    private let role: Role
    private let editor: ReadlineEditor?
    /// Everything this session shows goes through it.
    private let screen: TerminalScreen
    private let guestInput: GuestInputQueue
    /// Ends the front end's loop with an exit status.
    private let finish: (Int32) -> Void
    private var decoder = EscapeKeyDecoder()
    /// When the status line was last drawn.
    private var statusDrawnAt: UInt64 = 0

    init(mode: TerminalMode, role: Role, prompt: String, historyPath: String?,
         execute: @escaping (String) -> CommandOutcome, completer: @escaping ReadlineEditor.Completer,
         guestInput: GuestInputQueue, output: TerminalOutput = StandardOutputTerminal(),
         finish: @escaping (Int32) -> Void) {
        self.mode = mode
        self.role = role
        self.guestInput = guestInput
        self.finish = finish
        let focus: TerminalScreen.Focus
        switch role {
        case .shared(let startInMonitor): focus = startInMonitor ? .monitor : .console
        case .monitorOnly: focus = .monitor
        case .consoleOnly: focus = .console
        }
        let editor = role == .consoleOnly ? nil
            : ReadlineEditor(prompt: prompt, historyPath: historyPath, completer: completer)
        self.editor = editor
        screen = TerminalScreen(output: output, editor: editor, focus: focus, banner: Self.banner)
        editor?.onLine = { [unowned self] line in self.run(line, execute: execute) }
    }

    /// QEMU's words: `QEMU 7.2.0 monitor - type 'help' for more information`.
    static let banner = "swiftkvm \(SwiftKVMVersion.string) monitor - type 'help' for more information"

    /// Ctrl-C reaches the guest when it shares the terminal, and ends the process otherwise.
    func start() {
        if case .shared = role { mode.enterRaw(keySignals: false) } else { mode.enterRaw(keySignals: true) }
        screen.start()
    }

    func stop() {
        screen.leave()
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
                    if screen.focus == .console { guestInput.send(keys) } else { feedEditor(keys) }
                case .switchFocus: screen.switchFocus()
                case .help: screen.monitorLines(Self.keyHelp)
                case .quit:
                    screen.leave()
                    screen.commandOutput("swiftkvm: terminated\n")
                    finish(0)
                    return
                }
            }
        }
    }

    /// QEMU's Ctrl-a h text, as lines.
    private static let keyHelp = EscapeKeyDecoder.helpText
        .split(separator: "\n", omittingEmptySubsequences: false)
        .map { $0.hasPrefix("\r") ? $0.dropFirst() : $0 }
        .filter { !$0.isEmpty }
        .map { $0 + "\n" }
        .joined()

    /// Bytes from the guest's serial port.
    func showGuestOutput(_ bytes: [UInt8]) {
        screen.guestOutput(bytes)
    }

    /// Lines that arrived on their own (migration progress, events, logs).
    func showMonitorLines(_ bytes: [UInt8]) {
        screen.monitorLines(String(decoding: bytes, as: UTF8.self))
    }

    /// Shows, redraws or (nil) removes the status line above the prompt. Only while the
    /// monitor has the terminal; redrawn at most every `LiveStatus.refreshMilliseconds`.
    func showStatus(_ text: String?) {
        guard let text else { return screen.setStatus(nil) }
        guard text != screen.status else { return }
        let now = MonotonicClock.nanoseconds()
        if screen.status != nil && now - statusDrawnAt < UInt64(LiveStatus.refreshMilliseconds - 20) * 1_000_000 { return }
        screen.setStatus(text)
        statusDrawnAt = now
    }

    private func feedEditor(_ keys: [UInt8]) {
        screen.beforeEditorKeys(keys)
        editor?.feed(keys)
        screen.afterEditorKeys()
    }

    private func run(_ line: String?, execute: (String) -> CommandOutcome) {
        guard let line else {
            screen.commandOutput("\n")  // Ctrl-D on an empty line: QEMU's monitor ignores it too.
            return
        }
        let command = line.trimmingWhitespace()
        guard !command.isEmpty else { return }
        fflush(stdout)
        let outcome = execute(command)
        var text = outcome.output
        if let error = outcome.error { text += error.endingWithNewline() }
        screen.commandOutput(text)
        if outcome.quit {
            editor?.remove()
            finish(0)
        }
    }
}
