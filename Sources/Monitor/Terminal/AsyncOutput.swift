/// Where output that arrives on its own (guest console bytes, migration progress) goes.
/// Implementations print it above the line being edited and redraw the prompt.
public protocol AsyncOutput: AnyObject {
    /// Thread-safe. `text` is printed as is; callers end lines with "\n".
    func printAsync(_ text: String)
}
