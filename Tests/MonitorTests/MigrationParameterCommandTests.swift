import Migration
import XCTest
@testable import Monitor

/// `migrate_set_parameter`, `migrate_set_capability` and the `info migrate*` commands on a real
/// `MigrationController`: the human monitor reads QEMU's text and the typed layer decides.
final class MigrationParameterCommandTests: XCTestCase {
    private final class DiscardedOutput: AsyncOutput {
        func printAsync(_ text: String) {}
    }

    private var controller: MigrationController!
    private var monitor: CommandInterpreter!
    private let output = DiscardedOutput()

    override func setUp() {
        controller = MigrationController()
        monitor = CommandInterpreter(backend: FakeMonitorBackend(cpuCount: 1))
        MigrationCommands.register(in: monitor, controller: controller, machine: UnusedMachine(), output: output,
                                   waitWithoutDetach: false, startIncoming: nil)
    }

    private func run(_ line: String, file: StaticString = #filePath, line number: UInt = #line) -> String {
        let outcome = monitor.execute(line)
        XCTAssertNil(outcome.error, "\(line): \(outcome.error ?? "")", file: file, line: number)
        return outcome.output
    }

    private func error(_ line: String) -> String { monitor.execute(line).error ?? "(no error)" }

    private func complete(_ line: String) -> [String]? {
        let word = line.split(separator: " ", omittingEmptySubsequences: false).last.map(String.init) ?? ""
        return monitor.completions(line: line, wordStart: line.utf8.count - word.utf8.count, word: word)
    }

    /// With no outgoing migration, `migrate_pause` pauses the incoming postcopy, and when that
    /// fails the destination's own reason is what the user reads.
    func testMigratePauseOnADestinationReportsTheDestinationsError() {
        struct Lost: Error, CustomStringConvertible { var description: String { "the destination's own reason" } }
        var pauses = 0
        var failing = false
        let destination = CommandInterpreter(backend: FakeMonitorBackend(cpuCount: 1))
        MigrationCommands.register(in: destination, controller: MigrationController(), machine: UnusedMachine(), output: output,
                                   waitWithoutDetach: false, startIncoming: nil,
                                   incomingPostcopy: .init(recover: { _ in }, pause: {
                                       pauses += 1
                                       if failing { throw Lost() }
                                   }))
        XCTAssertNil(destination.execute("migrate_pause").error)
        XCTAssertEqual(pauses, 1)
        failing = true
        XCTAssertEqual(destination.execute("migrate_pause").error, "Error: the destination's own reason")
        XCTAssertEqual(error("migrate_pause"), "Error: \(MigrationError.pauseOutsidePostcopy)", "no postcopy on either side")
    }

    func testObjectAddAndDelManageTLSObjectsWithObjectsSyntax() throws {
        XCTAssertEqual(run("object_add authz-simple,id=auth0,identity=CN=src"), "")
        XCTAssertEqual(try controller.tlsObjects.authorization(id: "auth0").identity, "CN=src")
        XCTAssertEqual(run("object_add qom-type=authz-simple,id=auth1,identity=CN=a,,b"), "")
        XCTAssertEqual(try controller.tlsObjects.authorization(id: "auth1").identity, "CN=a,b", "a doubled comma is one comma")
        XCTAssertEqual(error("object_add authz-simple,id=auth0,identity=CN=x"), "Error: Duplicate ID 'auth0' for object")
        XCTAssertEqual(error("object_add tls-creds-x509,id=tls0,dir=/nonexistent,endpoint=server"),
                       "Error: Unable to use credentials /nonexistent/ca-cert.pem: No such file or directory")
        XCTAssertEqual(error("object_add tls-creds-x509,id=tls0,dir=/pki,endpoint=sideways"),
                       "Error: tls-creds-x509: Parameter 'endpoint' expects 'server' or 'client', not 'sideways'")
        XCTAssertEqual(error("object_add authz-simple,id=auth2,identity"),
                       "Error: authz-simple,id=auth2,identity: write each property as KEY=VALUE ('identity' has no '=')")
        XCTAssertEqual(error("object_add id=auth2"), "Error: id=auth2: Parameter 'qom-type' is missing")
        XCTAssertEqual(run("object_del auth0"), "")
        XCTAssertEqual(error("object_del auth0"), "Error: No TLS credentials or authz object with id 'auth0'")
        XCTAssertEqual(try controller.tlsObjects.authorization(id: "auth1").identity, "CN=a,b", "object_del removes only its id")
    }

    func testValuesAreReadAsQEMUsMonitorReadsThem() {
        let cases: [(String, MigrationParameter, UInt64)] = [
            ("max-bandwidth 100", .maxBandwidth, 100 << 20),
            ("max-bandwidth 1G", .maxBandwidth, 1 << 30),
            ("max-bandwidth 512k", .maxBandwidth, 512 << 10),
            ("max-bandwidth 1.5M", .maxBandwidth, 3 << 19),
            ("max-bandwidth 0x10", .maxBandwidth, 16 << 20),
            ("max-bandwidth 7E", .maxBandwidth, 7 << 60),
            ("max-bandwidth 0", .maxBandwidth, 0),
            ("downtime-limit 20", .downtimeLimit, 20),
            ("downtime-limit 0x10", .downtimeLimit, 16),
            ("downtime-limit 1K", .downtimeLimit, 1024),
            ("cpu-throttle-initial 30", .cpuThrottleInitial, 30),
            ("cpu-throttle-increment 0x5", .cpuThrottleIncrement, 5),
            ("max-cpu-throttle 80", .maxCPUThrottle, 80),
            ("throttle-trigger-threshold 100", .throttleTriggerThreshold, 100),
            ("multifd-channels 8", .multifdChannels, 8),
            ("multifd-zstd-level 3", .multifdZstdLevel, 3),
        ]
        for (arguments, parameter, expected) in cases {
            XCTAssertEqual(run("migrate_set_parameter \(arguments)"), "")
            XCTAssertEqual(controller.parameters[parameter], .unsigned(expected), arguments)
        }
        XCTAssertTrue(run("info migrate_parameters").hasSuffix("max-cpu-throttle: 80\ntls-creds: ''\ntls-hostname: ''\nmax-bandwidth: 0 bytes/second\ndowntime-limit: 1024 ms\nmultifd-channels: 8\nmultifd-compression: none\nmultifd-zstd-level: 3\ntls-authz: ''\n"))
        XCTAssertEqual(run("migrate_set_parameter multifd-compression zstd"), "")
        XCTAssertTrue(run("info migrate_parameters").contains("multifd-compression: zstd\n"))
        XCTAssertEqual(run("migrate_set_parameter tls-hostname dst.example.com"), "")
        XCTAssertEqual(controller.parameters.tlsHostname, "dst.example.com")
    }

    func testRefusalsUseQEMUsWordsAndChangeNothing() {
        let refusals: [(String, String)] = [
            ("bogus 1", "Error: invalid parameter value: bogus"),
            ("downtime-limit abc", "Error: Parameter 'downtime-limit' expects a non-negative number below 2^64"),
            ("downtime-limit -1", "Error: Parameter 'downtime-limit' expects a non-negative number below 2^64"),
            ("downtime-limit 2000001", "Error: Parameter 'downtime-limit' expects an integer in the range of 0 to 2000000 milliseconds"),
            ("cpu-throttle-initial abc", "Error: Parameter 'cpu-throttle-initial' expects uint64"),
            ("cpu-throttle-initial 300", "Error: Parameter 'cpu-throttle-initial' expects uint8_t"),
            ("max-cpu-throttle 100", "Error: Parameter 'max-cpu-throttle' expects an integer in the range of 1 to 99"),
            ("max-cpu-throttle 0", "Error: Parameter 'max-cpu-throttle' expects an integer in the range of 1 to 99"),
            ("throttle-trigger-threshold 101", "Error: Parameter 'throttle-trigger-threshold' expects an integer in the range of 1 to 100"),
            ("max-bandwidth fast", "Error: Invalid size fast"),
            ("max-bandwidth 1.5B", "Error: Invalid size 1.5B"),
            ("max-bandwidth 8E", "Error: Invalid size 8E"),
            ("max-bandwidth 16E", "Error: Invalid size 16E"),
            ("max-bandwidth \" 1\"", "Error: Invalid size  1"),
            ("multifd-channels 0", "Error: Parameter 'multifd-channels' expects an integer in the range of 1 to 255"),
            ("multifd-channels 256", "Error: Parameter 'multifd-channels' expects uint8_t"),
            ("multifd-zstd-level 21", "Error: Parameter 'multifd-zstd-level' expects an integer in the range of 0 to 20"),
            ("multifd-compression zlib", "Error: Parameter 'multifd-compression' value 'zlib' is not supported: swiftkvm builds in only none and zstd"),
            ("multifd-compression lz4", "Error: Parameter 'multifd-compression' does not accept value 'lz4'"),
            ("multifd-zlib-level 4", "Error: Parameter 'multifd-zlib-level' is not supported by swiftkvm"),
        ]
        for (arguments, message) in refusals {
            XCTAssertEqual(error("migrate_set_parameter \(arguments)"), message)
        }
        XCTAssertEqual(controller.parameters, MigrationParameters(), "no refused value was kept")
        XCTAssertEqual(error("migrate_set_parameter downtime-limit"),
                       "migrate_set_parameter: missing argument 'value'\nTry \"help migrate_set_parameter\" for more information")
    }

    func testTextOfEveryTypeIsReadAsQEMUReadsIt() throws {
        let tailslow = MigrationParameter("cpu-throttle-tailslow", .bool, default: .bool(false), "test entry")
        let compression = MigrationParameter("multifd-compression", .choice(["none", "zstd"]), default: .string("none"), "test entry")
        let creds = MigrationParameter("tls-creds", .string, default: .string(""), "test entry")
        let cache = MigrationParameter("xbzrle-cache-size", .size(0...UInt64.max, humanUnit: 1), default: .unsigned(0), "test entry")
        XCTAssertEqual(try MigrationParameterText.value("on", for: tailslow), .bool(true))
        XCTAssertThrowsError(try MigrationParameterText.value("maybe", for: tailslow)) {
            XCTAssertEqual("\($0)", "Parameter 'cpu-throttle-tailslow' expects 'on' or 'off'")
        }
        XCTAssertEqual(try MigrationParameterText.value("zstd", for: compression), .string("zstd"))
        XCTAssertEqual(try MigrationParameterText.value("tls0", for: creds), .string("tls0"))
        XCTAssertEqual(try MigrationParameterText.value("64M", for: cache), .unsigned(64 << 20))
        XCTAssertEqual(try MigrationParameterText.value("100", for: cache), .unsigned(100), "a bare size is bytes")
    }

    func testCapabilities() {
        XCTAssertEqual(run("migrate_set_capability events on"), "")
        XCTAssertEqual(run("migrate_set_capability xbzrle off"), "")
        XCTAssertTrue(controller.capabilities.events)
        XCTAssertTrue(run("info migrate_capabilities").contains("\nevents: on\n"))
        XCTAssertEqual(error("migrate_set_capability warp-drive on"), "Error: invalid parameter value: warp-drive")
        XCTAssertEqual(error("migrate_set_capability zero-copy-send on"), "Error: Capability 'zero-copy-send' is not supported by swiftkvm")
        XCTAssertEqual(run("migrate_set_capability multifd on"), "")
        XCTAssertTrue(run("info migrate_capabilities").contains("\nmultifd: on\n"))
        XCTAssertEqual(error("migrate_set_capability events maybe"),
                       "expected 'on' or 'off', got 'maybe'\nTry \"help migrate_set_capability\" for more information")
        XCTAssertTrue(controller.capabilities.events)
    }

    func testInfoMigrateBeforeAnyMigrationPrintsQEMUsGlobals() {
        XCTAssertEqual(run("info migrate"), MigrationInfoFormatter.infoMigrate(MigrationStats()))
        XCTAssertTrue(run("info migrate").hasPrefix("globals:\nstore-global-state: on\n"))
        XCTAssertFalse(run("info migrate").contains("Migration status"))
    }

    func testCompletionOffersTheTypedListsNames() {
        XCTAssertEqual(complete("migrate_set_parameter "), MigrationParameter.all.map(\.name).sorted())
        XCTAssertEqual(complete("migrate_set_parameter d"), ["downtime-limit"])
        XCTAssertEqual(complete("migrate_set_parameter cpu-throttle-i"), ["cpu-throttle-increment", "cpu-throttle-initial"])
        XCTAssertEqual(complete("migrate_set_parameter downtime-limit "), [])
        XCTAssertEqual(complete("migrate_set_capability "), ["auto-converge", "events", "mapped-ram", "multifd", "postcopy-blocktime", "postcopy-ram", "return-path", "x-ignore-shared"])
        XCTAssertEqual(complete("migrate_set_capability events o"), ["off", "on"])
    }

    /// Where swiftkvm's wording says more than QEMU 7.2's, it is kept (README, "Monitor commands").
    func testWordingKeptWhereItIsClearerThanQEMUs() {
        XCTAssertEqual(error("xp"), "xp: missing argument 'addr'\nTry \"help xp\" for more information")
        XCTAssertEqual(error("stop now"), "stop: extraneous characters at the end of line: 'now'\nTry \"help stop\" for more information")
        XCTAssertEqual(error("cpu 1"), "invalid CPU index: this machine has 1 vCPU(s), numbered from 0")
    }
}
