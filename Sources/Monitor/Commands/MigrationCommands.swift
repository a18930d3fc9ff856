import Glibc
import Machine
import Migration
import SystemSupport

/// QEMU's migration commands for the human monitor, registered into an interpreter.
public enum MigrationCommands {
    /// What the command line offers for `migrate_incoming` (only with `-incoming defer`).
    public typealias StartIncoming = (_ uri: String) throws -> Void

    /// The destination's side of a paused postcopy: `migrate_recover` and `migrate_pause`.
    public struct IncomingPostcopy {
        public var recover: (_ uri: String) throws -> Void
        public var pause: () throws -> Void
        public init(recover: @escaping (_ uri: String) throws -> Void, pause: @escaping () throws -> Void) {
            self.recover = recover; self.pause = pause
        }
    }

    /// `migrate_pause` (HMP) and `migrate-pause` (QMP), on either side: the outgoing postcopy
    /// here if there is one, else the incoming one, whose own error is the one reported.
    static func pausePostcopy(_ controller: MigrationController, incoming: IncomingPostcopy?) throws {
        do {
            try controller.pausePostcopy()
        } catch MigrationError.pauseOutsidePostcopy {
            guard let incoming else { throw MigrationError.pauseOutsidePostcopy }
            try incoming.pause()
        }
    }

    public enum CommandError: Error, CustomStringConvertible {
        case failed(String)
        case incomingNotDeferred
        /// A parameter or capability was not set; QEMU's monitor prefixes these `Error: `.
        case refused(Error)

        public var description: String {
            switch self {
            case .failed(let line): return line
            case .incomingNotDeferred:
                return "migrate_incoming is only allowed on a machine started with -incoming defer"
            case .refused(let error): return "Error: \(error)"
            }
        }
    }

    /// - Parameter waitWithoutDetach: `migrate` without `-d` waits for the outcome (piped scripts);
    ///   in an interactive monitor it returns at once and progress arrives asynchronously.
    /// - Returns: the live progress of a migration this monitor started, for
    ///   `MonitorFrontend.liveStatus` (QEMU's monitor shows nothing for QMP-started ones).
    @discardableResult
    public static func register(in interpreter: CommandInterpreter, controller: MigrationController,
                                machine: MigratableMachine, output: AsyncOutput,
                                waitWithoutDetach: Bool, startIncoming: StartIncoming?,
                                incomingPostcopy: IncomingPostcopy? = nil) -> () -> LiveStatus {
        let printer = EventPrinter(output: output)
        ObjectCommands.register(in: interpreter, objects: controller.tlsObjects)
        interpreter.register(MonitorCommand(
            name: "migrate", arguments: [.flag("d"), .flag("r"), ArgumentSpec("uri", .string)],
            help: "migrate to URI (using -d to not wait for completion)") { args, context in
            let uri = try args.string("uri")
            if args.flag("r") {
                do { try controller.resumePostcopy(uri: uri) } catch { throw CommandError.refused(error) }
                return ""
            }
            let wait = waitWithoutDetach && !args.flag("d") && context.mayWait
            printer.direct = wait
            defer { printer.direct = false }
            printer.ownsMigration = true
            do {
                try controller.migrate(uri: uri, machine: machine, events: printer.print)
            } catch {
                printer.ownsMigration = false
                throw error
            }
            guard wait else { return "" }
            if case .failed = controller.waitForCompletion() {
                throw CommandError.failed("migration failed: \(controller.stats.status.failureReason ?? "unknown reason")")
            }
            return ""
        })
        interpreter.register(MonitorCommand(
            name: "migrate_start_postcopy",
            help: "Followup to a migration command to switch the migration to postcopy mode. The postcopy-ram capability must be set on both source and destination before the original migration command .") { _, _ in
            do { try controller.startPostcopy() } catch { throw CommandError.refused(error) }
            return ""
        })
        interpreter.register(MonitorCommand(name: "migrate_pause", help: "Pause an ongoing migration (postcopy-only)") { _, _ in
            do { try pausePostcopy(controller, incoming: incomingPostcopy) } catch { throw CommandError.refused(error) }
            return ""
        })
        interpreter.register(MonitorCommand(
            name: "migrate_recover", arguments: [ArgumentSpec("uri", .string)],
            help: "Continue a paused incoming postcopy migration") { args, _ in
            guard let incomingPostcopy else { throw CommandError.refused(MigrationError.recoverOutsidePostcopyPause) }
            do { try incomingPostcopy.recover(try args.string("uri")) } catch { throw CommandError.refused(error) }
            return ""
        })
        interpreter.register(MonitorCommand(name: "migrate_cancel", help: "cancel the current VM migration") { _, _ in
            controller.cancel()
            return ""
        })
        interpreter.register(MonitorCommand(
            name: "migrate_incoming", arguments: [ArgumentSpec("uri", .string)],
            help: "Continue an incoming migration from an -incoming defer") { args, _ in
            guard let startIncoming else { throw CommandError.incomingNotDeferred }
            try startIncoming(try args.string("uri"))
            return ""
        })
        interpreter.register(MonitorCommand(
            name: "migrate_set_parameter",
            arguments: [ArgumentSpec("parameter", .string, completions: MigrationParameter.all.map(\.name)),
                        ArgumentSpec("value", .string)],
            help: "Set the parameter for migration") { args, _ in
            let name = try args.string("parameter"), text = try args.string("value")
            do {
                let parameter = try MigrationParameter.named(name)
                try controller.setParameter(parameter, to: try MigrationParameterText.value(text, for: parameter))
            } catch {
                throw CommandError.refused(error)
            }
            return ""
        })
        interpreter.register(MonitorCommand(
            name: "migrate_set_capability",
            arguments: [ArgumentSpec("capability", .string,
                                     completions: MigrationCapability.all.filter(\.isSupported).map(\.name)),
                        ArgumentSpec("state", .onOff)],
            help: "Enable/Disable the usage of a capability for migration") { args, _ in
            let name = try args.string("capability"), on = args.bool("state")
            do {
                try controller.setCapability(try MigrationCapability.named(name), on: on)
            } catch {
                throw CommandError.refused(error)
            }
            return ""
        })
        interpreter.registerInfo(InfoCommand(name: "migrate", help: "show migration status") { _, _ in
            MigrationInfoFormatter.infoMigrate(controller.stats, showBlocktime: controller.capabilities.postcopyBlocktime)
        })
        interpreter.registerInfo(InfoCommand(name: "migrate_parameters", help: "show current migration parameters") { _, _ in
            MigrationInfoFormatter.parameters(controller.parameters)
        })
        interpreter.registerInfo(InfoCommand(name: "migrate_capabilities", help: "show current migration capabilities") { _, _ in
            MigrationInfoFormatter.capabilities(controller.capabilities)
        })
        return { progressStatus(controller.stats, startedHere: printer.ownsMigration) }
    }

    /// Passes shorter than this finish before a progress line would help anyone.
    static let progressDelayNs: UInt64 = 500_000_000

    /// What the terminal shows while a migration runs: the pass's progress once it has run
    /// for `progressDelayNs`, nothing otherwise.
    public static func progressStatus(_ stats: MigrationStats, startedHere: Bool) -> LiveStatus {
        guard startedHere else { return .idle }
        guard stats.status.isInProgress, let pass = stats.currentPass, pass.elapsedNs >= progressDelayNs else {
            return .pending
        }
        return .line(MigrationProgressFormatter.progressLine(pass))
    }

    /// Progress lines: above the prompt normally, or straight to stdout while a script waits
    /// in `migrate` (the monitor's loop is blocked then, and lines should appear as they come).
    final class EventPrinter: @unchecked Sendable {
        private let output: AsyncOutput
        private let lock = Mutex()
        private var isDirect = false
        private var owning = false
        var direct: Bool {
            get { lock.withLock { isDirect } }
            set { lock.withLock { isDirect = newValue } }
        }
        /// True from `migrate` here until that migration's last line is printed.
        var ownsMigration: Bool {
            get { lock.withLock { owning } }
            set { lock.withLock { owning = newValue } }
        }

        init(output: AsyncOutput) { self.output = output }

        func print(_ event: MigrationEvent) {
            defer { if case .finished = event { ownsMigration = false } }
            let line = MigrationProgressFormatter.line(for: event) + "\n"
            if direct {
                // The loop is blocked in this command: write at once, waiting if stdout is full.
                FileIO.writeAll(1, line)
            } else {
                output.printAsync(line)
            }
        }
    }
}

extension MigrationStatus {
    var failureReason: String? {
        if case .failed(let reason) = self { return reason }
        return nil
    }
}
