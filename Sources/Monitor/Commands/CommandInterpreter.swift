/// What running one monitor line produced.
public struct CommandOutcome: Equatable, Sendable {
    /// Text for the user (may be empty); ends with a newline when not empty.
    public var output: String
    /// Set when the line failed; already includes the `Try "help CMD"` hint where one fits.
    public var error: String?
    /// The line asked the process to end (`quit`).
    public var quit: Bool

    public init(output: String = "", error: String? = nil, quit: Bool = false) {
        self.output = output; self.error = error; self.quit = quit
    }
}

/// Parses and runs monitor command lines against a backend. Stub signature: replaced by the
/// command-table implementation.
public final class CommandInterpreter {
    public let backend: MonitorBackend

    public init(backend: MonitorBackend) {
        self.backend = backend
    }

    public func execute(_ line: String) -> CommandOutcome {
        CommandOutcome(error: "unknown command: '\(line)'")
    }

    /// Candidates for the word being completed. `nil` means "complete a file name".
    public func completions(line: String, wordStart: Int, word: String) -> [String]? {
        []
    }
}
