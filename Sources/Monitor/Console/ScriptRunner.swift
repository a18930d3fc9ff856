/// Runs monitor commands read from a non-terminal stdin, QEMU-style: no prompt, no echo.
///
/// Blank lines and lines starting with `#` are skipped. A failing line prints
/// `line N: <error>` to the error writer and the run goes on; `failedLines` counts them so the
/// process can exit non-zero. After `quit` the remaining lines are ignored.
public final class ScriptRunner {
    public private(set) var failedLines = 0
    public private(set) var quitRequested = false
    public private(set) var lineNumber = 0

    private var splitter: LineSplitter
    private let execute: (String) -> CommandOutcome
    private let writeOutput: (String) -> Void
    private let writeError: (String) -> Void

    public init(maxLineBytes: Int = LineSplitter.defaultMaxLineBytes,
                execute: @escaping (String) -> CommandOutcome,
                writeOutput: @escaping (String) -> Void,
                writeError: @escaping (String) -> Void) {
        self.splitter = LineSplitter(maxLineBytes: maxLineBytes)
        self.execute = execute
        self.writeOutput = writeOutput
        self.writeError = writeError
    }

    public func feed<Bytes: Sequence>(_ bytes: Bytes) where Bytes.Element == UInt8 {
        for piece in splitter.feed(bytes) { run(piece) }
    }

    /// End of input. The guest keeps running; only the script is over.
    public func finish() {
        for piece in splitter.finish() { run(piece) }
    }

    private func run(_ piece: LineSplitter.Piece) {
        lineNumber += 1
        guard !quitRequested else { return }
        switch piece {
        case .tooLong(let byteCount):
            fail("line is \(byteCount) bytes long, more than the \(splitter.maxLineBytes) allowed; skipped")
        case .line(let text):
            let command = text.trimmingWhitespace()
            if command.isEmpty || command.hasPrefix("#") { return }
            let outcome = execute(command)
            if !outcome.output.isEmpty { writeOutput(outcome.output.endingWithNewline()) }
            if let error = outcome.error { fail(error) }
            if outcome.quit { quitRequested = true }
        }
    }

    private func fail(_ message: String) {
        failedLines += 1
        writeError("line \(lineNumber): \(message)".endingWithNewline())
    }
}

extension String {
    func endingWithNewline() -> String { hasSuffix("\n") ? self : self + "\n" }

    func trimmingWhitespace() -> String {
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\t" || $0 == "\r" }
        guard let first = firstIndex(where: { !isSpace($0) }),
              let last = lastIndex(where: { !isSpace($0) }) else { return "" }
        return String(self[first...last])
    }
}
