import Machine

/// QMP's run-control commands: query-status, stop, cont, system_reset, system_powerdown, quit, query-version,
/// human-monitor-command.
public enum QMPMachineCommands {
    /// - Parameters:
    ///   - humanMonitor: runs one HMP line (the same interpreter as the human monitor).
    ///   - requestQuit: ends the process once the reply is out.
    public static func register(in table: QMPCommandTable, backend: MonitorBackend, events: QMPEventHub,
                                humanMonitor: @escaping (String) -> CommandOutcome,
                                requestQuit: @escaping () -> Void) {
        table.register(QMPCommand("query-status") { _ in
            let state = backend.runState
            return .object([("running", .bool(state.isRunning)), ("singlestep", .bool(false)),
                            ("status", .string(Self.statusName(state)))])
        })
        table.register(QMPCommand("stop") { _ in
            try backend.stop()
            return .emptyObject
        })
        table.register(QMPCommand("cont") { _ in
            try backend.cont(force: false)
            return .emptyObject
        })
        table.register(QMPCommand("system_reset") { _ in
            try backend.systemReset()
            events.emit("RESET", data: .object([("guest", .bool(false)), ("reason", .string("host-qmp-system-reset"))]))
            return .emptyObject
        })
        table.register(QMPCommand("system_powerdown") { _ in
            try backend.systemPowerdown()
            events.emit("POWERDOWN")
            return .emptyObject
        })
        table.register(QMPCommand("quit") { _ in
            events.emit("SHUTDOWN", data: .object([("guest", .bool(false)), ("reason", .string("host-qmp-quit"))]))
            requestQuit()
            return .emptyObject
        })
        table.register(QMPCommand("query-version") { _ in
            QMPSession.greeting["QMP"]?["version"] ?? .emptyObject
        })
        table.register(QMPCommand("human-monitor-command", arguments: ["command-line", "cpu-index"]) { args in
            let line = try args.string("command-line")
            let outcome = humanMonitor(line)
            if outcome.quit { requestQuit() }
            // QEMU returns HMP errors as text: they are what the human monitor would print.
            return .string(outcome.output + (outcome.error.map { $0 + "\n" } ?? ""))
        })
    }

    /// QEMU's RunState names as query-status spells them.
    static func statusName(_ state: RunState) -> String {
        switch state {
        case .running: return "running"
        case .paused(nil): return "paused"
        case .paused(let reason?): return reason.rawValue
        }
    }
}

extension QMPMachineCommands {
    /// QEMU sends RESET for the human monitor's `system_reset` too: wraps that command.
    /// (A reset the guest asks for itself, through the i8042, has no machine callback yet.)
    public static func reportHumanMonitorResets(in interpreter: CommandInterpreter, events: QMPEventHub) {
        guard let original = interpreter.command(named: "system_reset") else { return }
        var wrapped = original
        wrapped.handler = { arguments, context in
            let output = try original.handler(arguments, context)
            events.emit("RESET", data: .object([("guest", .bool(false)), ("reason", .string("host-qmp-system-reset"))]))
            return output
        }
        interpreter.register(wrapped)
    }
}
