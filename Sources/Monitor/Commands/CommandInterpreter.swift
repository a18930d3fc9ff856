/// What running one monitor line produced.
public struct CommandOutcome: Equatable, Sendable {
    /// Text for the user (may be empty); ends with a newline when not empty.
    public var output: String
    /// Set when the line failed; already includes the `Try "help CMD"` hint where one fits.
    /// Has no trailing newline.
    public var error: String?
    /// The line asked the process to end (`quit`).
    public var quit: Bool

    public init(output: String = "", error: String? = nil, quit: Bool = false) {
        self.output = output; self.error = error; self.quit = quit
    }
}

/// Parses and runs monitor command lines against a backend. Commands come from one table
/// (`commands`, `infoCommands`), from which help, completion and argument parsing all follow;
/// other layers add theirs with `register` and `registerInfo`.
///
/// Not thread-safe: run it from one thread (the REPL) or serialise calls.
public final class CommandInterpreter {
    public let backend: MonitorBackend
    /// Lines run so far, oldest first, as `info history` lists them (QEMU keeps 64).
    public var history: [String] = []
    public static let historyLimit = 64

    public private(set) var commands: [MonitorCommand] = []
    public private(set) var infoCommands: [InfoCommand] = []
    /// The vCPU that `info registers`, `x` and `memsave` look at (QEMU's `cpu` command).
    public var currentCPU = 0
    /// Which commands the machine's run state allows (nil: all; tests without a machine).
    public var rules: RunStateRules?
    /// QEMU remembers the last `x`/`xp` format and size as the defaults for the next one.
    var lastDumpFormat = MemoryDumpFormat()

    public init(backend: MonitorBackend) {
        self.backend = backend
        BuiltinCommands.all.forEach(register)
        BuiltinCommands.info.forEach(registerInfo)
    }

    /// Adds a command, replacing any command of the same name.
    public func register(_ command: MonitorCommand) {
        commands.removeAll { $0.name == command.name }
        commands.append(command)
    }

    /// Adds an `info` subcommand, replacing any of the same name.
    public func registerInfo(_ sub: InfoCommand) {
        infoCommands.removeAll { $0.name == sub.name }
        infoCommands.append(sub)
    }

    /// The command a name or alias stands for.
    public func command(named name: String) -> MonitorCommand? {
        commands.first { $0.names.contains(name) }
    }

    public func infoCommand(named name: String) -> InfoCommand? {
        infoCommands.first { $0.name == name }
    }

    /// - Parameter mayWait: see `CommandContext.mayWait`.
    public func execute(_ line: String, mayWait: Bool = true) -> CommandOutcome {
        let trimmed = line.drop { $0.isWhitespace }
        if trimmed.isEmpty { return CommandOutcome() }
        remember(line)
        if trimmed.hasPrefix("#") { return CommandOutcome() }

        let context = CommandContext(backend: backend, interpreter: self, mayWait: mayWait)
        var helpTopic: String?
        do {
            let tokens = try CommandLineTokenizer.tokenize(line)
            let (command, arguments, topic) = try resolve(tokens)
            helpTopic = topic
            var parser = ArgumentParser(command: topic, specs: command.arguments, previousDumpFormat: lastDumpFormat)
            let parsed: MonitorArguments
            defer { if let used = parser.dumpFormatUsed { lastDumpFormat = used } }
            parsed = try parser.parse(arguments)
            // The topic, not the name: `info migrate` is not `migrate`.
            try rules?.check(command: topic)
            let output = try command.handler(parsed, context)
            return CommandOutcome(output: output, quit: context.quitRequested)
        } catch let error as MonitorError {
            return CommandOutcome(error: message(for: error, topic: helpTopic ?? guessTopic(line)),
                                  quit: context.quitRequested)
        } catch {
            return CommandOutcome(error: "\(error)", quit: context.quitRequested)
        }
    }

    /// Finds the command (or `info` subcommand) a line names and the words left for its
    /// arguments. The topic is what `help` needs to describe it (`x`, `info registers`).
    private func resolve(_ tokens: [CommandToken]) throws
        -> (MonitorCommand, ArraySlice<CommandToken>, topic: String) {
        guard let first = tokens.first else { throw MonitorError.unknownCommand("") }
        var rest = tokens.dropFirst()
        var name = first.text
        // Like QEMU, a command name ends at `/`, so `x/4xb 0x1000` works without a space.
        if !first.quoted, let slash = name.firstIndex(of: "/") {
            let format = CommandToken(text: String(name[slash...]), quoted: false, start: first.start, end: first.end)
            name = String(name[..<slash])
            rest = ArraySlice([format] + rest)
        }
        guard let command = command(named: name) else { throw MonitorError.unknownCommand(name) }
        guard command.name == "info", let subName = rest.first else { return (command, rest, command.name) }
        guard let sub = infoCommand(named: subName.text) else {
            throw MonitorError.unknownCommand("info \(subName.text)")
        }
        return (sub.asCommand, rest.dropFirst(), "info \(sub.name)")
    }

    private func message(for error: MonitorError, topic: String?) -> String {
        guard error.isUsageError, let topic, !topic.isEmpty else { return error.description }
        return "\(error.description)\nTry \"help \(topic)\" for more information"
    }

    /// For errors found before the command was resolved (a bad quote): the first word.
    private func guessTopic(_ line: String) -> String? {
        let first = CommandLineTokenizer.tokenizeLeniently(Array(line.utf8)).first?.text
        return first.flatMap { name in command(named: name).map { _ in name } }
    }

    private func remember(_ line: String) {
        history.append(line)
        if history.count > Self.historyLimit { history.removeFirst(history.count - Self.historyLimit) }
    }

    // MARK: help

    /// `help` with no topic lists every command; a topic lists that command, `info`'s
    /// subcommands, or one `info` subcommand. Sorted by name, as QEMU sorts its tables.
    public func helpText(topic: [String] = []) throws -> String {
        guard let name = topic.first else {
            return commands.sorted { $0.name < $1.name }.map { $0.helpLine() }.joined()
        }
        if name == "info" {
            if topic.count > 1 {
                guard let sub = infoCommand(named: topic[1]) else {
                    throw MonitorError.unknownCommand("info \(topic[1])")
                }
                return sub.asCommand.helpLine(prefix: "info ")
            }
            return infoHelpText()
        }
        guard let command = command(named: name) else { throw MonitorError.unknownCommand(name) }
        return command.helpLine()
    }

    public func infoHelpText() -> String {
        infoCommands.sorted { $0.name < $1.name }.map { $0.asCommand.helpLine(prefix: "info ") }.joined()
    }

    // MARK: completion

    /// Candidates for the word being completed; `nil` means "complete a file name".
    /// `wordStart` is the word's UTF-8 byte offset in `line`, as readline reports it.
    public func completions(line: String, wordStart: Int, word: String) -> [String]? {
        let bytes = Array(line.utf8)
        let before = CommandLineTokenizer.tokenizeLeniently(Array(bytes.prefix(max(0, min(wordStart, bytes.count)))))
        guard let first = before.first else {
            return matching(word, commands.flatMap { $0.names })
        }
        var name = first.text
        var words = before.dropFirst().map { $0 }
        if let slash = name.firstIndex(of: "/") {
            words.insert(CommandToken(text: String(name[slash...]), quoted: false, start: 0, end: 0), at: 0)
            name = String(name[..<slash])
        }
        guard let command = command(named: name) else { return [] }
        switch command.name {
        case "info":
            if words.isEmpty { return matching(word, infoCommands.map { $0.name }) }
            guard let sub = infoCommand(named: words[0].text) else { return [] }
            return argumentCompletions(sub.arguments, after: words.dropFirst(), word: word)
        case "help":
            if words.isEmpty { return matching(word, commands.flatMap { $0.names }) }
            if words.count == 1, words[0].text == "info" { return matching(word, infoCommands.map { $0.name }) }
            return []
        default:
            return argumentCompletions(command.arguments, after: words[...], word: word)
        }
    }

    private func argumentCompletions(_ specs: [ArgumentSpec], after words: ArraySlice<CommandToken>,
                                     word: String) -> [String]? {
        guard let spec = Self.spec(at: words, in: specs) else { return [] }
        if !spec.completions.isEmpty { return matching(word, spec.completions) }
        switch spec.kind {
        case .filename: return nil
        case .onOff: return matching(word, ["off", "on"])
        default: return []
        }
    }

    /// Which spec the next word fills, given the words already typed.
    static func spec(at words: ArraySlice<CommandToken>, in specs: [ArgumentSpec]) -> ArgumentSpec? {
        var rest = words
        for spec in specs {
            switch spec.kind {
            case .flag:
                if let token = rest.first, ArgumentParser.isFlag(token, spec) { rest = rest.dropFirst() }
                continue
            case .memoryFormat:
                if let token = rest.first, token.text.hasPrefix("/") { rest = rest.dropFirst() }
                continue
            default:
                if rest.isEmpty { return spec }
                rest = rest.dropFirst()
            }
        }
        return nil
    }

    private func matching(_ prefix: String, _ names: [String]) -> [String] {
        Array(Set(names.filter { $0.hasPrefix(prefix) })).sorted()
    }
}
