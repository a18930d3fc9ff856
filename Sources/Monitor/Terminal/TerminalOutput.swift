import Glibc
import SystemSupport

/// Where an interactive terminal's bytes go, and how wide it is.
public protocol TerminalOutput: AnyObject {
    func write(_ bytes: [UInt8])
    var columns: Int { get }
}

/// The line editor as the terminal's writer sees it: a prompt and the text being edited,
/// drawn by the editor itself on the rows at the bottom of the screen.
public protocol LineEditorView: AnyObject {
    /// Taking keys, with its prompt on screen.
    var isInstalled: Bool { get }
    /// Shows the prompt (on the cursor's row, which must be empty) and starts taking keys.
    func install()
    /// Stops taking keys; whatever it drew stays on screen.
    func remove()
    /// Takes the prompt and edited text off the screen; the cursor ends at the start of the
    /// first row they took.
    func erase()
    /// Draws the prompt and edited text again from the cursor's row, which must be empty.
    func redraw()
    /// The prompt and the text being edited, as shown.
    var visibleLine: String { get }
}

/// The process's standard output, when it is a terminal.
final class StandardOutputTerminal: TerminalOutput {
    func write(_ bytes: [UInt8]) {
        // Readline writes through stdio: what it buffered goes first.
        fflush(stdout)
        FileIO.writeAll(1, bytes)
    }

    var columns: Int {
        var size = winsize()
        // SAFETY: TIOCGWINSZ fills in the winsize passed by address.
        let result = ioctl(1, UInt(TIOCGWINSZ), &size)
        return result == 0 && size.ws_col > 0 ? Int(size.ws_col) : 80
    }
}
