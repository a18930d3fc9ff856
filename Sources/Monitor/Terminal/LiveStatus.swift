/// A transient line an interactive terminal shows above the prompt and redraws in place
/// (migration progress), asked for a few times a second. Nothing else ever sees it: piped
/// scripts, sockets, QMP and log files get only the lasting lines.
public enum LiveStatus: Equatable {
    /// Nothing under way: the terminal need not ask again until something happens.
    case idle
    /// Something is under way but has nothing to show now: ask again soon.
    case pending
    case line(String)

    /// How often a terminal asks while something is under way.
    public static let refreshMilliseconds: Int32 = 250

    var text: String? {
        if case .line(let text) = self { return text }
        return nil
    }

    /// `text` cut to fit in `columns - 1` columns, so it never wraps (a wrapped status line
    /// would leave its first row behind when erased).
    static func fitted(_ text: String, columns: Int) -> String {
        let room = max(columns - 1, 1)
        return text.count <= room ? text : String(text.prefix(room))
    }
}
