import Machine
import Migration
import XCTest
@testable import Monitor

final class QMPSessionTests: XCTestCase {
    var backend: FakeMonitorBackend!
    var events: QMPEventHub!
    var table: QMPCommandTable!
    var quitRequests = 0
    var hmpLines: [String] = []

    override func setUpWithError() throws {
        backend = FakeMonitorBackend()
        events = try QMPEventHub(initialState: .running)
        table = QMPCommandTable()
        QMPMachineCommands.register(in: table, backend: backend, events: events,
                                    humanMonitor: { [unowned self] line in
                                        self.hmpLines.append(line)
                                        return line == "bad" ? CommandOutcome(error: "unknown command: 'bad'") : CommandOutcome(output: "VM status: running\n")
                                    },
                                    requestQuit: { [unowned self] in self.quitRequests += 1 })
    }

    /// Sends one text and parses every reply line.
    func send(_ session: QMPSession, _ text: String) throws -> [JSONValue] {
        try session.receive(Array(text.utf8)).map { line in
            XCTAssertTrue(line.hasSuffix("\r\n"), line)
            return try JSONParser.parse(line)
        }
    }

    func negotiated() throws -> QMPSession {
        let session = QMPSession(table: table)
        XCTAssertEqual(try send(session, #"{"execute": "qmp_capabilities"}"#), [.object([("return", .emptyObject)])])
        return session
    }

    func testGreetingNamesQEMU72AndSwiftKVM() {
        XCTAssertEqual(QMPSession.line(QMPSession.greeting),
                       #"{"QMP": {"version": {"qemu": {"major": 7, "minor": 2, "micro": 0}, "package": "swiftkvm 0.1.0"}, "capabilities": []}}"# + "\r\n")
    }

    func testCommandsBeforeNegotiationAreRefusedAsQEMUDoes() throws {
        let session = QMPSession(table: table)
        let reply = try send(session, #"{"execute": "query-status", "id": 7}"#)
        XCTAssertEqual(reply.first?["error"]?["class"], .string("CommandNotFound"))
        XCTAssertEqual(reply.first?["error"]?["desc"], .string("Expecting capabilities negotiation with 'qmp_capabilities'"))
        XCTAssertEqual(reply.first?["id"], .integer(7))
        XCTAssertFalse(session.negotiated)
        XCTAssertEqual(try send(session, #"{"execute": "qmp_capabilities", "arguments": {"enable": ["oob"]}}"#).first?["error"]?["desc"],
                       .string("Capability 'oob' not available"))
        _ = try send(session, #"{"execute": "qmp_capabilities"}"#)
        XCTAssertEqual(try send(session, #"{"execute": "qmp_capabilities"}"#).first?["error"]?["class"], .string("CommandNotFound"))
    }

    func testIdIsEchoedWhateverItsType() throws {
        let session = try negotiated()
        let reply = try send(session, #"{"execute": "query-status", "id": {"tag": ["x", 1]}}"#)
        XCTAssertEqual(reply, [.object([
            ("return", .object([("running", .bool(true)), ("singlestep", .bool(false)), ("status", .string("running"))])),
            ("id", .object([("tag", .array([.string("x"), .integer(1)])) ])),
        ])])
    }

    func testBadInputGetsErrorsAndTheSessionCarriesOn() throws {
        let session = try negotiated()
        let cases: [(String, String, String)] = [
            ("{\"execute\": ", "", ""),  // incomplete: no reply yet
            ("}", "GenericError", "JSON parse error"),
            (#"[1, 2]"#, "GenericError", "QMP input must be a JSON object"),
            (#"{"arguments": {}}"#, "GenericError", "QMP input lacks member 'execute'"),
            (#"{"execute": 3}"#, "GenericError", "QMP input member 'execute' must be a string"),
            (#"{"execute": "stop", "arguments": []}"#, "GenericError", "QMP input member 'arguments' must be an object"),
            (#"{"execute": "stop", "extra": 1}"#, "GenericError", "QMP input member 'extra' is unexpected"),
            (#"{"execute": "no-such"}"#, "CommandNotFound", "The command no-such has not been found"),
            (#"{"execute": "human-monitor-command", "arguments": {"command-line": 5}}"#, "GenericError",
             "Invalid parameter type for 'command-line', expected: string"),
            (#"{"execute": "human-monitor-command"}"#, "GenericError", "Parameter 'command-line' is missing"),
            (#"{"execute": "stop", "arguments": {"now": true}}"#, "GenericError", "Parameter 'now' is unexpected"),
            ("nonsense\n", "GenericError", "JSON parse error"),
        ]
        var replies: [JSONValue] = []
        for (text, _, _) in cases { replies += try send(session, text) }
        let expected = cases.dropFirst()
        XCTAssertEqual(replies.count, expected.count, "\(replies)")
        for (reply, (_, errorClass, desc)) in zip(replies, expected) {
            XCTAssertEqual(reply["error"]?["class"], .string(errorClass), "\(reply)")
            guard case .string(let text)? = reply["error"]?["desc"] else { XCTFail("\(reply)"); continue }
            XCTAssertTrue(text.hasPrefix(desc), text)
        }
        XCTAssertEqual(backend.log, [])
        XCTAssertEqual(try send(session, #"{"execute": "stop"}"#), [.object([("return", .emptyObject)])])
        XCTAssertEqual(backend.log, ["stop"])
    }

    func testOversizedMessageGetsAnErrorAndClosesTheSession() throws {
        let session = try negotiated()
        let big = "{\"execute\": \"" + String(repeating: "x", count: QMPStreamSplitter.defaultMaxMessageBytes) + "\"}"
        let replies = try send(session, big)
        XCTAssertEqual(replies.count, 1)
        XCTAssertEqual(replies.first?["error"]?["class"], .string("GenericError"))
        XCTAssertTrue(session.mustClose)
    }

    func testQueryCommandsListsTheTable() throws {
        let session = try negotiated()
        let reply = try send(session, #"{"execute": "query-commands"}"#).first?["return"]
        guard case .array(let items)? = reply else { return XCTFail("\(String(describing: reply))") }
        let names = items.compactMap { item -> String? in if case .string(let s)? = item["name"] { return s } else { return nil } }
        for name in ["qmp_capabilities", "query-commands", "query-status", "stop", "cont", "system_reset", "system_powerdown", "quit",
                     "query-version", "human-monitor-command"] {
            XCTAssertTrue(names.contains(name), name)
        }
    }

    func testRunControlHumanMonitorAndQuit() throws {
        let session = try negotiated()
        _ = try send(session, #"{"execute": "stop"}{"execute": "cont"}{"execute": "system_reset"}{"execute": "system_powerdown"}"#)
        XCTAssertEqual(backend.log, ["stop", "cont force=false", "reset", "powerdown"])
        backend.refuseCont = true
        backend.runState = .paused(.postmigrate)
        let refused = try send(session, #"{"execute": "cont"}{"execute": "query-status"}"#)
        XCTAssertEqual(refused.first?["error"]?["desc"], .string("refused by the fake"))
        XCTAssertEqual(refused.last?["return"]?["status"], .string("postmigrate"))
        XCTAssertEqual(refused.last?["return"]?["running"], .bool(false))

        let hmp = try send(session, #"{"execute": "human-monitor-command", "arguments": {"command-line": "info status"}}{"execute": "human-monitor-command", "arguments": {"command-line": "bad"}}"#)
        XCTAssertEqual(hmp.map { $0["return"] }, [.string("VM status: running\n"), .string("unknown command: 'bad'\n")])
        XCTAssertEqual(hmpLines, ["info status", "bad"])

        XCTAssertEqual(try send(session, #"{"execute": "quit"}"#), [.object([("return", .emptyObject)])])
        XCTAssertEqual(quitRequests, 1)
        let emitted = events.takeQueued().compactMap { $0["event"] }
        XCTAssertEqual(emitted, [.string("RESET"), .string("POWERDOWN"), .string("SHUTDOWN")])
    }

    func testStateChangesBecomeStopResumeAndShutdownOnTransitionsOnly() throws {
        events.machineStateChanged(.running)
        events.machineStateChanged(.paused(.finishMigrate))
        events.machineStateChanged(.paused(.postmigrate))
        events.machineStateChanged(.running)
        events.machineStateChanged(.paused(.shutdown))
        let emitted = events.takeQueued()
        XCTAssertEqual(emitted.compactMap { $0["event"] }, [.string("STOP"), .string("RESUME"), .string("SHUTDOWN"), .string("STOP")])
        XCTAssertEqual(emitted[2]["data"]?["reason"], .string("guest-shutdown"))
        guard case .integer(let seconds)? = emitted[0]["timestamp"]?["seconds"],
              case .integer(let micros)? = emitted[0]["timestamp"]?["microseconds"] else { return XCTFail("\(emitted[0])") }
        XCTAssertGreaterThan(seconds, 1_600_000_000)
        XCTAssertTrue((0..<1_000_000).contains(micros))
    }
}
