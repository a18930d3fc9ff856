import Glibc
import Machine
import Migration
import Monitor
import Sockets
import TLS

/// Prints a one-line error, and for option errors the usage, then exits with status 1.
func fail(_ message: String, showUsage: Bool = false) -> Never {
    fputs("swiftkvm: \(message)\n", stderr)
    if showUsage { fputs("\n" + CommandLineParser.usage, stderr) }
    exit(1)
}

let options: Configuration
do {
    options = try CommandLineParser.parse(Array(CommandLine.arguments.dropFirst())).applyingIncomingStdioRules()
} catch let error as OptionError {
    fputs("\(error)\n\n\(CommandLineParser.usage)", stderr)
    exit(1)
}

switch options.action {
case .showHelp:
    print(CommandLineParser.usage, terminator: "")
    exit(0)
case .showVersion:
    print(CommandLineParser.version)
    exit(0)
case .run:
    break
}
for warning in options.warnings { fputs("swiftkvm: warning: \(warning)\n", stderr) }

// Forks first, while no threads exist; errors until `daemon.finish()` still reach the terminal.
let daemon: Daemonizer
do {
    daemon = try Daemonizer(daemonize: options.daemonize, pidFile: options.pidFile,
                            serialOnStdio: (try? options.serialSpec()) == .stdio, monitorOnStdio: options.monitorSpec == .stdio)
} catch {
    fail("\(error)")
}

let machineConfiguration: MachineConfiguration
do {
    machineConfiguration = try options.machineConfiguration(defaultKernel: DefaultGuest.path)
} catch {
    fail("\(error)")
}

let stdinIsTerminal = isatty(0) == 1
let machine: Machine
do {
    machine = try Machine(configuration: machineConfiguration)
} catch {
    fail("\(error)")
}

let interpreter = CommandInterpreter(backend: machine)
interpreter.registerInfo(InfoCommand(name: "name", help: "show the current VM name") { _, _ in
    options.name.map { $0 + "\n" } ?? ""
})
// TLS objects first: migration, QMP and the monitor socket name them.
let tlsObjects = TLSObjectRegistry()
for object in options.objects {
    do { try tlsObjects.add(object) } catch { fail("-object \(object.id): \(error)") }
}
let frontend: MonitorFrontend
do {
    frontend = try MonitorFrontend(interpreter: interpreter, console: machine.console,
                                   serial: try options.serialSpec(), monitor: options.monitorSpec, tlsObjects: tlsObjects)
} catch let error as SocketTLSSetupError {
    fail("-monitor: \(error)")
} catch {
    fail("\(error)")
}

let asyncOutput = frontend.asyncOutput
BackgroundMemorySaves.register(in: interpreter, output: asyncOutput, waitWithoutDetach: !stdinIsTerminal)
machine.log = { line in
    if stdinIsTerminal { asyncOutput.printAsync(line + "\n") } else { fputs(line + "\n", stderr) }
}
machine.onGuestExit = { status in frontend.requestExit(status: status) }
// A guest that powers off ends the process with status 0, as QEMU does without -no-shutdown.
machine.onGuestPowerOff = { frontend.requestExit(status: 0) }

let log = machine.log
let migration = MigrationController(tlsObjects: tlsObjects)
let incoming = IncomingRunner(machine: machine, controller: migration, resumeWhenDone: !options.startPaused, log: log,
                              fail: { status in frontend.requestExit(status: status) })
let incomingPostcopy = MigrationCommands.IncomingPostcopy(recover: { try incoming.recoverPostcopy(uri: $0) },
                                                          pause: { try incoming.pausePostcopy() })
let runStateRules = RunStateRules { [machine, migration] in
    // After a postcopy switchover `migrate -r` must get through; the controller refuses the
    // rest itself (a second `migrate`, a capability change) while the migration lasts.
    let status = migration.stats.status
    return RunStateRules.Situation(runState: machine.runState, outgoingMigration: status.isInProgress && !status.isPostcopy)
}
interpreter.rules = runStateRules
frontend.liveStatus = MigrationCommands.register(
    in: interpreter, controller: migration, machine: machine, output: asyncOutput,
    waitWithoutDetach: !stdinIsTerminal,
    startIncoming: options.incoming == .deferred ? { try incoming.start(uri: try MigrationURI.parse($0)) } : nil,
    incomingPostcopy: incomingPostcopy)

for warning in options.plainNetworkWarnings { fputs("swiftkvm: warning: \(warning)\n", stderr) }

// QMP runs on the monitor's poll loop, so QMP and human-monitor commands never overlap.
if !options.qmp.isEmpty {
    do {
        let qmpEvents = try QMPEventHub(initialState: machine.runState)
        machine.runStateObservers.add { qmpEvents.machineStateChanged($0) }
        let qmpTable = QMPCommandTable()
        qmpTable.rules = runStateRules
        QMPMachineCommands.register(in: qmpTable, backend: machine, events: qmpEvents,
                                    humanMonitor: { interpreter.execute($0, mayWait: false) },
                                    requestQuit: { frontend.requestExit(status: 0) })
        QMPMachineCommands.reportHumanMonitorResets(in: interpreter, events: qmpEvents)
        // The guest's ACPI power-off pauses the machine with reason shutdown, which
        // machineStateChanged reports as SHUTDOWN; the process then ends as above.
        machine.guestResetObservers.add {
            qmpEvents.emit("RESET", data: .object([("guest", .bool(true)), ("reason", .string("guest-reset"))]))
        }
        QMPMigrationCommands.register(in: qmpTable, controller: migration, machine: machine, events: qmpEvents,
                                      startIncoming: options.incoming == .deferred ? { try incoming.start(uri: try MigrationURI.parse($0)) } : nil,
                                      incomingPostcopy: incomingPostcopy)
        frontend.attach(try QMPServer(specs: options.qmpSpecs, table: qmpTable, events: qmpEvents, tlsObjects: tlsObjects))
    } catch {
        fail("-qmp: \(error)")
    }
}

frontend.waitForClients()
if case .uri(let uri)? = options.incoming {
    do { try incoming.start(uri: uri) } catch { fail("-incoming \(uri): \(IncomingRunner.reason(error))") }
} else if options.incoming == nil && !options.startPaused {
    machine.start()
}

daemon.finish()
let status = frontend.run()
exit(status)
