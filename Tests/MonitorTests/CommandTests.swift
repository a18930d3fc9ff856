import Machine
import XCTest
@testable import Monitor

final class CommandTests: XCTestCase {
    private var backend: FakeMonitorBackend!
    private var monitor: CommandInterpreter!

    override func setUp() {
        backend = FakeMonitorBackend(cpuCount: 2)
        monitor = CommandInterpreter(backend: backend)
    }

    private func output(_ line: String, file: StaticString = #filePath, line number: UInt = #line) -> String {
        let outcome = monitor.execute(line)
        XCTAssertNil(outcome.error, "\(line): \(outcome.error ?? "")", file: file, line: number)
        return outcome.output
    }

    private func error(_ line: String, file: StaticString = #filePath, line number: UInt = #line) -> String {
        let outcome = monitor.execute(line)
        XCTAssertEqual(outcome.output, "", file: file, line: number)
        return outcome.error ?? "(no error)"
    }

    func testBlankAndCommentLinesAreNoOps() {
        for line in ["", "   ", "\t", "# a comment", "   # indented comment"] {
            XCTAssertEqual(monitor.execute(line), CommandOutcome(), line)
        }
        XCTAssertTrue(backend.log.isEmpty)
    }

    func testInfoStatusFollowsRunState() {
        XCTAssertEqual(output("info status"), "VM status: running\n")
        backend.runState = .paused(nil)
        XCTAssertEqual(output("info status"), "VM status: paused\n")
        backend.runState = .paused(.inmigrate)
        XCTAssertEqual(output("info status"), "VM status: paused (inmigrate)\n")
        backend.runState = .paused(.postmigrate)
        XCTAssertEqual(output("info  status "), "VM status: paused (postmigrate)\n")
    }

    func testStopContResetQuit() {
        XCTAssertEqual(output("stop"), "")
        XCTAssertEqual(output("s"), "")
        XCTAssertEqual(output("cont"), "")
        XCTAssertEqual(output("c -f"), "")
        XCTAssertEqual(output("system_reset"), "")
        XCTAssertEqual(output("system_powerdown"), "")
        XCTAssertEqual(backend.log, ["stop", "stop", "cont force=false", "cont force=true", "reset", "powerdown"])
        let quit = monitor.execute("q")
        XCTAssertTrue(quit.quit)
        XCTAssertNil(quit.error)
        XCTAssertTrue(monitor.execute("quit").quit)
        XCTAssertEqual(backend.log.suffix(2), ["quit", "quit"])
        XCTAssertFalse(monitor.execute("stop").quit)
    }

    func testBackendErrorIsReportedWithoutHint() {
        backend.refuseCont = true
        XCTAssertEqual(error("cont"), "refused by the fake")
        XCTAssertEqual(output("cont -f"), "")
    }

    func testInfoCpusMarksCurrentCPU() {
        XCTAssertEqual(output("info cpus"), "* CPU #0: thread_id=1234\n  CPU #1: thread_id=1235\n")
        XCTAssertEqual(output("cpu 1"), "")
        XCTAssertEqual(output("info cpus"), "  CPU #0: thread_id=1234\n* CPU #1: thread_id=1235\n")
        XCTAssertEqual(error("cpu 2"), "invalid CPU index: this machine has 2 vCPU(s), numbered from 0")
        XCTAssertEqual(output("info cpus"), "  CPU #0: thread_id=1234\n* CPU #1: thread_id=1235\n", "a bad index changes nothing")
        backend.halted = [false, true]
        XCTAssertEqual(output("info cpus"), "  CPU #0: thread_id=1234\n* CPU #1: thread_id=1235 (halted)\n")
    }

    func testInfoVersion() {
        XCTAssertEqual(output("info version"), "swiftkvm \(SwiftKVMVersion.string)\n")
        XCTAssertEqual(SwiftKVMVersion.string, "0.1.0")
    }

    func testInfoHistoryListsLinesIncludingItself() {
        _ = monitor.execute("info status")
        _ = monitor.execute("bogus")
        _ = monitor.execute("")
        XCTAssertEqual(output("info history"), "0: 'info status'\n1: 'bogus'\n2: 'info history'\n")
        XCTAssertEqual(monitor.history, ["info status", "bogus", "info history"])
    }

    func testHistoryIsBounded() {
        for index in 0..<100 { _ = monitor.execute("info status \(index)") }
        XCTAssertEqual(monitor.history.count, CommandInterpreter.historyLimit)
        XCTAssertEqual(monitor.history.last, "info status 99")
    }

    func testUnknownCommandUsesQEMUWording() {
        XCTAssertEqual(error("foo"), "unknown command: 'foo'")
        XCTAssertEqual(error("foo bar baz"), "unknown command: 'foo'")
        XCTAssertEqual(error("info foo"), "unknown command: 'info foo'")
        XCTAssertEqual(error(#""" x"#), "unknown command: ''")
    }

    func testArgumentErrorsNameTheProblemAndHint() {
        XCTAssertEqual(error("xp"), "xp: missing argument 'addr'\nTry \"help xp\" for more information")
        XCTAssertEqual(error("pmemsave 0 4096"),
                       "pmemsave: missing argument 'file'\nTry \"help pmemsave\" for more information")
        XCTAssertEqual(error("xp /2xg zz"),
                       "invalid number 'zz': expected a decimal or 0x hexadecimal integer\nTry \"help xp\" for more information")
        XCTAssertEqual(error("pmemsave 0 4Q /tmp/x"),
                       "invalid size '4Q': expected a number with an optional K, M, G or T suffix\nTry \"help pmemsave\" for more information")
        XCTAssertEqual(error("stop now"),
                       "stop: extraneous characters at the end of line: 'now'\nTry \"help stop\" for more information")
        XCTAssertEqual(error("info registers 1 2"),
                       "info registers: extraneous characters at the end of line: '2'\nTry \"help info registers\" for more information")
        XCTAssertEqual(error(#"pmemsave 0 1 "/tmp/x"#),
                       "unterminated string literal: close it with a double quote (\")\nTry \"help pmemsave\" for more information")
        XCTAssertTrue(error("xp 0x99999999999999999").hasSuffix("\nTry \"help xp\" for more information"))
        XCTAssertTrue(error("cpu 99999999999").hasPrefix("number '99999999999' is too large"))
    }

    func testQuotedDashIsNotAFlag() {
        XCTAssertTrue(error(#"cont "-f""#).hasPrefix("cont: extraneous characters"))
    }

    func testHelpListsEveryCommandSortedWithAliases() {
        let help = output("help")
        let lines = help.split(separator: "\n").map(String.init)
        XCTAssertTrue(lines.contains("cont|c [-f] -- resume emulation (-f: also after a completed outgoing migration)"))
        XCTAssertTrue(lines.contains("quit|q  -- quit the emulator"))
        XCTAssertTrue(lines.contains("stop|s  -- stop emulation"))
        XCTAssertTrue(lines.contains("help|? [cmd] -- show the help"))
        XCTAssertTrue(lines.contains("x /fmt addr -- virtual memory dump starting at 'addr'"))
        XCTAssertTrue(lines.contains("xp /fmt addr -- physical memory dump starting at 'addr'"))
        XCTAssertTrue(lines.contains(
            "pmemsave addr size file -- save to disk physical memory dump starting at 'addr' of size 'size'"))
        XCTAssertTrue(lines.contains("system_reset  -- reset the system"))
        XCTAssertTrue(lines.contains("info [subcommand] -- show various information about the system state"))
        XCTAssertEqual(lines.count, monitor.commands.count)
        let names = lines.map { $0.prefix { $0 != " " && $0 != "|" } }
        XCTAssertEqual(names, names.sorted())
        XCTAssertEqual(output("?"), help)
    }

    func testHelpForOneCommand() {
        XCTAssertEqual(output("help cont"), "cont|c [-f] -- resume emulation (-f: also after a completed outgoing migration)\n")
        XCTAssertEqual(output("help c"), output("help cont"))
        XCTAssertEqual(output("help info status"), "info status  -- show the current VM status (running|paused)\n")
        XCTAssertEqual(error("help nope"), "unknown command: 'nope'")
    }

    func testHelpInfoListsSubcommands() {
        let text = output("help info")
        XCTAssertEqual(text, output("info"))
        let lines = text.split(separator: "\n").map(String.init)
        XCTAssertEqual(lines, [
            "info cpus  -- show infos for each CPU",
            "info history  -- show the command line history",
            "info registers [-a|vcpu] -- show the cpu registers (-a: show register info for all cpus; "
                + "vcpu: specific vCPU to query; show the current CPU's registers if no argument is specified)",
            "info status  -- show the current VM status (running|paused)",
            "info version  -- show the version of swiftkvm",
        ])
    }

    func testRegisteredCommandsJoinTheTable() throws {
        monitor.register(MonitorCommand(
            name: "migrate", arguments: [.flag("d"), ArgumentSpec("uri", .string)],
            help: "migrate to URI (using -d to not wait for completion)") { args, _ in
            "uri=\(try args.string("uri")) detach=\(args.flag("d"))\n"
        })
        monitor.register(MonitorCommand(
            name: "migrate_set_capability", arguments: [ArgumentSpec("capability", .string), ArgumentSpec("state", .onOff)],
            help: "Enable/Disable the usage of a capability for migration") { args, _ in
            "\(try args.string("capability"))=\(args.bool("state"))\n"
        })
        monitor.register(MonitorCommand(
            name: "migrate_set_parameter", arguments: [ArgumentSpec("parameter", .string), ArgumentSpec("value", .size)],
            help: "Set the parameter for migration") { args, _ in
            "\(try args.string("parameter"))=\(try args.integer("value"))\n"
        })
        monitor.registerInfo(InfoCommand(name: "migrate", help: "show migration status") { _, _ in
            "Migration status: none\n"
        })
        XCTAssertEqual(output("migrate -d tcp:127.0.0.1:4444"), "uri=tcp:127.0.0.1:4444 detach=true\n")
        XCTAssertEqual(output("migrate unix:/tmp/s"), "uri=unix:/tmp/s detach=false\n")
        XCTAssertEqual(output("migrate_set_capability xbzrle on"), "xbzrle=true\n")
        XCTAssertEqual(output("migrate_set_parameter max-bandwidth 64M"), "max-bandwidth=67108864\n")
        XCTAssertEqual(error("migrate_set_capability xbzrle maybe"),
                       "expected 'on' or 'off', got 'maybe'\nTry \"help migrate_set_capability\" for more information")
        XCTAssertEqual(output("info migrate"), "Migration status: none\n")
        XCTAssertTrue(output("help").contains("migrate [-d] uri -- migrate to URI (using -d to not wait for completion)\n"))
        XCTAssertTrue(output("help info").contains("info migrate  -- show migration status\n"))
        XCTAssertEqual(monitor.completions(line: "migrate_set_capability xbzrle o", wordStart: 30, word: "o"), ["off", "on"])
    }

    func testRegisteringReplacesACommandOfTheSameName() {
        monitor.register(MonitorCommand(name: "stop", aliases: ["s"], help: "replaced") { _, _ in "mine\n" })
        XCTAssertEqual(output("s"), "mine\n")
        XCTAssertEqual(monitor.commands.filter { $0.name == "stop" }.count, 1)
    }

    func testHandlerErrorsOfOtherTypesPrintTheirDescription() {
        struct Boom: Error, CustomStringConvertible { var description: String { "migration failed: boom" } }
        monitor.register(MonitorCommand(name: "boom", help: "fails") { _, _ in throw Boom() })
        XCTAssertEqual(error("boom"), "migration failed: boom")
    }
}
