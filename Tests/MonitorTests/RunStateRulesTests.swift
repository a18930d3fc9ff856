import Machine
import Migration
import XCTest
@testable import Monitor

/// Every command in every run state (and during an outgoing migration), through the human
/// monitor and QMP: what `RunStateRules` refuses is refused before anything runs, with the
/// same words on both; everything else reaches its handler.
final class RunStateRulesTests: XCTestCase {
    final class SituationBox: @unchecked Sendable {
        var situation = RunStateRules.Situation(runState: .running)
    }

    static let situations: [RunStateRules.Situation] = {
        let states: [RunState] = [.running, .paused(nil)] + [PauseReason.inmigrate, .postmigrate, .finishMigrate, .prelaunch,
                                                               .shutdown, .internalError, .guestPanicked].map { .paused($0) }
        return states.flatMap { [RunStateRules.Situation(runState: $0), .init(runState: $0, outgoingMigration: true)] }
    }()

    /// The specification, written out: what each situation refuses, by HMP name.
    static func expectedRefusal(_ command: String, _ s: RunStateRules.Situation) -> String? {
        let waiting = "Guest is waiting for an incoming migration"
        let switching = "the guest is being handed over to the migration's destination (finish-migrate); try again once the migration has ended"
        let busy = "There's a migration process in progress"
        switch (command, s.runState) {
        case ("migrate", .paused(.inmigrate?)), ("system_reset", .paused(.inmigrate?)), ("cont", .paused(.inmigrate?)):
            return waiting
        case ("stop", .paused(.inmigrate?)):
            return waiting + " (start swiftkvm with -S to keep the guest paused once it arrives)"
        case ("system_reset", .paused(.finishMigrate?)), ("stop", .paused(.finishMigrate?)), ("cont", .paused(.finishMigrate?)):
            return switching
        case ("migrate", _) where s.outgoingMigration, ("migrate_set_capability", _) where s.outgoingMigration:
            return busy
        default:
            return nil
        }
    }

    /// One line per HMP command (an `info` of each kind too); `migrate` gets a URI that fails
    /// parsing, so an allowed one ends in that error instead of starting anything.
    static let humanLines: [(command: String, line: String)] = [
        ("migrate", "migrate bogus:x"), ("system_reset", "system_reset"), ("stop", "stop"), ("cont", "cont"),
        ("migrate_set_capability", "migrate_set_capability events on"), ("migrate_cancel", "migrate_cancel"),
        ("migrate_set_parameter", "migrate_set_parameter downtime-limit 300"), ("info", "info status"),
        ("info", "info migrate"), ("info", "info registers"), ("xp", "xp /1xb 0"), ("x", "x /1xb 0"),
        ("help", "help"), ("cpu", "cpu 0"), ("pmemsave", "pmemsave 0 1 /nonexistent-dir/x"),
        ("memsave", "memsave 0 1 /nonexistent-dir/x"), ("migrate_incoming", "migrate_incoming bogus:x"),
    ]

    func testTheHumanMonitorRefusesWhatTheTableSaysAndRunsTheRest() {
        let box = SituationBox()
        let backend = FakeMonitorBackend()
        let interpreter = CommandInterpreter(backend: backend)
        MigrationCommands.register(in: interpreter, controller: MigrationController(), machine: UnusedMachine(),
                                   output: DiscardedOutput(), waitWithoutDetach: false, startIncoming: nil)
        interpreter.rules = RunStateRules { box.situation }
        for situation in Self.situations {
            box.situation = situation
            for (command, line) in Self.humanLines {
                backend.log = []
                let outcome = interpreter.execute(line, mayWait: false)
                let expected = Self.expectedRefusal(command, situation)
                let context = "\(line) in \(situation.runState), outgoing \(situation.outgoingMigration)"
                if let expected {
                    XCTAssertEqual(outcome.error, expected, context)
                    XCTAssertEqual(backend.log, [], context + ": the backend was called")
                } else if let error = outcome.error {
                    XCTAssertFalse(error.contains("incoming migration") || error.contains("finish-migrate")
                                   || error.contains("in progress"), context + ": " + error)
                }
            }
        }
    }

    func testQMPRefusesTheSameWithTheSameWords() throws {
        let box = SituationBox()
        let backend = FakeMonitorBackend()
        let table = QMPCommandTable()
        let events = try QMPEventHub(initialState: .running)
        QMPMachineCommands.register(in: table, backend: backend, events: events, humanMonitor: { _ in CommandOutcome() },
                                    requestQuit: {})
        QMPMigrationCommands.register(in: table, controller: MigrationController(), machine: UnusedMachine(),
                                      events: events, startIncoming: nil)
        table.rules = RunStateRules { box.situation }
        let session = QMPSession(table: table)
        _ = session.receive(Array(#"{"execute": "qmp_capabilities"}"#.utf8))
        let requests: [(command: String, json: String)] = [
            ("migrate", #"{"execute": "migrate", "arguments": {"uri": "bogus:x"}}"#),
            ("system_reset", #"{"execute": "system_reset"}"#), ("stop", #"{"execute": "stop"}"#),
            ("cont", #"{"execute": "cont"}"#),
            ("migrate_set_capability", #"{"execute": "migrate-set-capabilities", "arguments": {"capabilities": []}}"#),
            ("query", #"{"execute": "query-status"}"#), ("query", #"{"execute": "query-migrate"}"#),
            ("migrate_cancel", #"{"execute": "migrate_cancel"}"#),
        ]
        for situation in Self.situations {
            box.situation = situation
            for (command, json) in requests {
                backend.log = []
                let reply = try JSONParser.parse(session.receive(Array(json.utf8)).first ?? "")
                let context = "\(json) in \(situation.runState), outgoing \(situation.outgoingMigration)"
                if let expected = Self.expectedRefusal(command, situation) {
                    XCTAssertEqual(reply["error"]?["desc"], .string(expected), context)
                    XCTAssertEqual(backend.log, [], context + ": the backend was called")
                } else if case .string(let desc)? = reply["error"]?["desc"] {
                    XCTAssertFalse(desc.contains("incoming migration") || desc.contains("finish-migrate"), context + ": " + desc)
                }
            }
        }
    }

    func testEveryRuleNamesACommandThatExists() throws {
        let interpreter = CommandInterpreter(backend: FakeMonitorBackend())
        MigrationCommands.register(in: interpreter, controller: MigrationController(), machine: UnusedMachine(),
                                   output: DiscardedOutput(), waitWithoutDetach: false, startIncoming: nil)
        for name in RunStateRules.ruledCommands {
            XCTAssertNotNil(interpreter.command(named: name), name)
        }
        let table = QMPCommandTable()
        QMPMigrationCommands.register(in: table, controller: MigrationController(), machine: UnusedMachine(),
                                      events: try QMPEventHub(initialState: .running), startIncoming: nil)
        for name in RunStateRules.ruledQMPCommands {
            XCTAssertNotNil(table.command(named: name), name)
        }
    }
}

private final class DiscardedOutput: AsyncOutput {
    func printAsync(_ text: String) {}
}
