import CReadline
import Glibc

/// Readline's history list, kept in a file between runs: read at start, written after each
/// line, at most `maxEntries` long.
final class CommandHistory {
    static let maxEntries: Int32 = 1000

    let path: String?

    init(path: String?) {
        self.path = path
        using_history()
        stifle_history(Self.maxEntries)
        if let path { _ = read_history(path) }
    }

    /// `SWIFTKVM_HISTORY` when set (empty: keep no file), else `~/.swiftkvm_history`.
    static func defaultPath(environment: [String: String]) -> String? {
        if let chosen = environment["SWIFTKVM_HISTORY"] { return chosen.isEmpty ? nil : chosen }
        guard let home = environment["HOME"], !home.isEmpty else { return nil }
        return home + "/.swiftkvm_history"
    }

    func add(_ line: String) {
        guard !line.isEmpty, line != lastEntry else { return }
        add_history(line)
        if let path { _ = write_history(path) }
    }

    private var lastEntry: String? {
        guard history_length > 0, let entry = history_get(history_base + history_length - 1),
              let text = entry.pointee.line else { return nil }
        // SAFETY: history entries hold NUL-terminated lines owned by readline.
        return String(cString: text)
    }
}
