/// One QMP command: its name, the argument names it accepts, and its handler, which returns
/// the `return` value or throws a `QMPError` (other errors become GenericError with their text).
public struct QMPCommand {
    public typealias Handler = (_ arguments: QMPArguments) throws -> JSONValue

    public var name: String
    public var arguments: [String]
    public var handler: Handler

    public init(_ name: String, arguments: [String] = [], handler: @escaping Handler) {
        self.name = name
        self.arguments = arguments
        self.handler = handler
    }
}

/// The commands of one process, in one table; `query-commands` lists it. Not thread-safe:
/// it runs on the monitor's poll-loop thread, like the human monitor.
public final class QMPCommandTable {
    public private(set) var commands: [QMPCommand] = []
    /// Which commands the machine's run state allows (nil: all).
    public var rules: RunStateRules?

    public init() {}

    /// Adds a command, replacing any of the same name.
    public func register(_ command: QMPCommand) {
        commands.removeAll { $0.name == command.name }
        commands.append(command)
    }

    func command(named name: String) -> QMPCommand? { commands.first { $0.name == name } }

    /// Runs `command` if the run state allows it.
    func execute(_ command: QMPCommand, _ arguments: QMPArguments) throws -> JSONValue {
        try rules?.check(qmpCommand: command.name)
        return try command.handler(arguments)
    }

    /// Every name, with `qmp_capabilities` and `query-commands` that the session adds.
    var names: [String] { ["qmp_capabilities", "query-commands"] + commands.map(\.name).filter { $0 != "query-commands" } }
}
