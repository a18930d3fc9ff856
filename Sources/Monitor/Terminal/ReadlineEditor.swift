import CReadline
import Glibc

/// GNU readline's callback interface, fed byte by byte from the poll loop instead of reading
/// the terminal itself, so the loop can also serve the guest console and sockets and can send
/// Ctrl-a keys elsewhere. Readline is global to the process: one editor is current at a time.
///
/// The terminal mode is the front end's business (`TerminalMode`); readline's own terminal
/// preparation is switched off.
final class ReadlineEditor: LineEditorView {
    typealias Completer = (_ line: String, _ wordStart: Int, _ word: String) -> [String]?

    let prompt: String
    private let history: CommandHistory
    fileprivate let completer: Completer
    /// Gets each finished line; nil when Ctrl-D was pressed on an empty line.
    var onLine: (String?) -> Void = { _ in }
    private(set) var isInstalled = false
    fileprivate var input: [UInt8] = []
    fileprivate var inputIndex = 0

    init(prompt: String, historyPath: String?, completer: @escaping Completer) {
        self.prompt = prompt
        self.history = CommandHistory(path: historyPath)
        self.completer = completer
        configureReadlineOnce()
    }

    /// Shows the prompt and starts taking keys.
    func install() {
        guard !isInstalled else { return }
        currentEditor = self
        isInstalled = true
        // Readline learns whether to echo from the terminal mode it would set itself; that
        // step is ours, so tell it: the terminal does not echo, readline must.
        _ = rl_tty_set_echoing(1)
        rl_callback_handler_install(prompt) { line in
            let text = line.map { String(cString: $0) }
            free(line)
            currentEditor?.accept(text)
        }
        fflush(rl_outstream)
    }

    /// Stops taking keys. What is on screen stays there.
    func remove() {
        guard isInstalled else { return }
        isInstalled = false
        rl_callback_handler_remove()
        input.removeAll()
        inputIndex = 0
    }

    func feed(_ bytes: [UInt8]) {
        guard isInstalled else { return }
        input.append(contentsOf: bytes)
        while isInstalled && inputIndex < input.count {
            let before = inputIndex
            rl_callback_read_char()
            if inputIndex == before { break }  // readline took nothing: do not spin
        }
        if inputIndex >= input.count { input.removeAll(keepingCapacity: true); inputIndex = 0 }
    }

    /// The prompt and the text being edited.
    var visibleLine: String {
        guard isInstalled, let buffer = rl_line_buffer else { return prompt }
        return prompt + String(cString: buffer)
    }

    func erase() {
        fflush(stdout)
        _ = rl_clear_visible_line()
        fflush(rl_outstream)
    }

    func redraw() {
        rl_on_new_line()
        _ = rl_forced_update_display()
        fflush(rl_outstream)
    }

    fileprivate func accept(_ line: String?) {
        if let line { history.add(line.trimmingWhitespace()) }
        onLine(line)
    }

    fileprivate func nextInputByte() -> Int32 {
        guard inputIndex < input.count else { return EOF }
        defer { inputIndex += 1 }
        return Int32(input[inputIndex])
    }

    fileprivate var hasInput: Bool { inputIndex < input.count }
}

/// The editor readline's C callbacks talk to.
private var currentEditor: ReadlineEditor?
private var readlineConfigured = false

private func configureReadlineOnce() {
    guard !readlineConfigured else { return }
    readlineConfigured = true
    // Kept for the life of the process: readline holds on to the pointer.
    rl_readline_name = UnsafePointer(strdup("swiftkvm"))
    rl_catch_signals = 0
    rl_instream = stdin
    rl_outstream = stdout
    rl_prep_term_function = { _ in }
    rl_deprep_term_function = {}
    rl_getc_function = { _ in currentEditor?.nextInputByte() ?? EOF }
    // Readline peeks for typed-ahead keys; they are in the editor's buffer, not on the fd.
    rl_input_available_hook = { (currentEditor?.hasInput ?? false) ? 1 : 0 }
    rl_attempted_completion_function = { text, start, end in
        guard let editor = currentEditor, let text, let buffer = rl_line_buffer else { return nil }
        // SAFETY: readline passes offsets inside its NUL-terminated line buffer.
        let lineBytes = UnsafeBufferPointer(start: buffer, count: Int(end)).map { UInt8(bitPattern: $0) }
        let line = String(decoding: lineBytes, as: UTF8.self)
        let wordStart = String(decoding: lineBytes.prefix(Int(start)), as: UTF8.self).count
        let word = String(cString: text)
        guard let candidates = editor.completer(line, wordStart, word) else {
            rl_attempted_completion_over = 0
            return nil  // readline completes a file name
        }
        rl_attempted_completion_over = 1
        return makeReadlineMatches(candidates.filter { $0.hasPrefix(word) })
    }
}

/// Readline's match list: the text to insert (the candidates' common prefix), then each
/// candidate, then NULL; all malloc'ed, readline frees them.
private func makeReadlineMatches(_ candidates: [String]) -> UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? {
    guard let first = candidates.first else { return nil }
    var common = first
    for candidate in candidates.dropFirst() {
        common = String(zip(common, candidate).prefix { $0 == $1 }.map { $0.0 })
    }
    let entries = candidates.count == 1 ? [first] : [common] + candidates
    let size = (entries.count + 1) * MemoryLayout<UnsafeMutablePointer<CChar>?>.stride
    guard let raw = malloc(size) else { return nil }
    // SAFETY: the block holds entries.count + 1 pointers, all written below.
    let matches = raw.bindMemory(to: UnsafeMutablePointer<CChar>?.self, capacity: entries.count + 1)
    for (index, entry) in entries.enumerated() { matches[index] = strdup(entry) }
    matches[entries.count] = nil
    return matches
}
