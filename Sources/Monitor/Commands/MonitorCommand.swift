/// One entry of the monitor's command table: everything help, completion and parsing need.
/// Modelled on QEMU's hmp-commands.hx, so adding a command is adding one value.
public struct MonitorCommand {
    /// Runs a command with its already parsed, typed arguments. Returns the text to print
    /// (ending in a newline when not empty) or throws an error whose description is shown.
    public typealias Handler = (_ arguments: MonitorArguments, _ context: CommandContext) throws -> String

    public var name: String
    public var aliases: [String]
    public var arguments: [ArgumentSpec]
    /// Parameter synopsis shown by `help`, e.g. `"[-d] uri"`; derived from `arguments` when nil.
    public var params: String
    public var help: String
    public var handler: Handler

    public init(name: String, aliases: [String] = [], arguments: [ArgumentSpec] = [], params: String? = nil,
                help: String, handler: @escaping Handler) {
        self.name = name
        self.aliases = aliases
        self.arguments = arguments
        self.params = params ?? ArgumentSpec.synopsis(of: arguments)
        self.help = help
        self.handler = handler
    }

    /// Every name the command answers to, as `help` joins them (`cont|c`).
    public var names: [String] { [name] + aliases }

    /// The command's `help` line: `name params -- help text`, as QEMU prints it.
    public func helpLine(prefix: String = "") -> String {
        "\(prefix)\(names.joined(separator: "|")) \(params) -- \(help)\n"
    }
}

/// One `info` subcommand. Same shape as a command, without aliases.
public struct InfoCommand {
    public var name: String
    public var arguments: [ArgumentSpec]
    public var params: String
    public var help: String
    public var handler: MonitorCommand.Handler

    public init(name: String, arguments: [ArgumentSpec] = [], params: String? = nil, help: String,
                handler: @escaping MonitorCommand.Handler) {
        self.name = name
        self.arguments = arguments
        self.params = params ?? ArgumentSpec.synopsis(of: arguments)
        self.help = help
        self.handler = handler
    }

    var asCommand: MonitorCommand {
        MonitorCommand(name: name, arguments: arguments, params: params, help: help, handler: handler)
    }
}

/// What a handler may use besides its arguments.
public final class CommandContext {
    public let backend: MonitorBackend
    /// The interpreter running the command (for `help`, `info history` and the current CPU).
    public unowned let interpreter: CommandInterpreter
    /// Set by a handler to end the process once the outcome is delivered (`quit`).
    public var quitRequested = false
    /// False when the caller must get its answer at once (QMP's `human-monitor-command`, a
    /// `-monitor unix:` client): commands that would wait for something (`migrate` without
    /// `-d`) return instead. Only a piped script on stdin waits.
    public let mayWait: Bool

    init(backend: MonitorBackend, interpreter: CommandInterpreter, mayWait: Bool) {
        self.backend = backend
        self.interpreter = interpreter
        self.mayWait = mayWait
    }
}
