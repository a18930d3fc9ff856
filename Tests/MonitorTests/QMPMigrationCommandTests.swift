import Machine
import Migration
import XCTest
@testable import Monitor

/// The migration commands' argument handling and JSON shapes; real migrations are in
/// Tests/IntegrationTests/QMPMigrationTests.swift.
final class QMPMigrationCommandTests: XCTestCase {
    var controller: MigrationController!
    var session: QMPSession!
    var incomingURIs: [String] = []

    override func setUpWithError() throws {
        controller = MigrationController()
        let table = QMPCommandTable()
        QMPMigrationCommands.register(in: table, controller: controller, machine: UnusedMachine(),
                                      events: try QMPEventHub(initialState: .running),
                                      startIncoming: { [unowned self] in self.incomingURIs.append($0) })
        session = QMPSession(table: table)
        _ = session.receive(Array(#"{"execute": "qmp_capabilities"}"#.utf8))
    }

    func run(_ text: String) throws -> JSONValue {
        let replies = session.receive(Array(text.utf8))
        XCTAssertEqual(replies.count, 1, "\(replies)")
        return try JSONParser.parse(replies.first ?? "")
    }

    func testParametersAreSetAllOrNothingInBytesPerSecond() throws {
        XCTAssertEqual(try run(#"{"execute": "migrate-set-parameters", "arguments": {"downtime-limit": 1500, "max-bandwidth": 1000000, "max-cpu-throttle": 80}}"#),
                       .object([("return", .emptyObject)]))
        XCTAssertEqual(controller.parameters.downtimeLimitMs, 1500)
        XCTAssertEqual(controller.parameters.maxBandwidth, 1_000_000)
        XCTAssertEqual(controller.parameters.maxCPUThrottle, 80)

        let refused = try run(#"{"execute": "migrate-set-parameters", "arguments": {"downtime-limit": 10, "cpu-throttle-initial": 100}}"#)
        XCTAssertEqual(refused["error"]?["class"], .string("GenericError"), "\(refused)")
        XCTAssertEqual(controller.parameters.downtimeLimitMs, 1500, "a refused set changes nothing")
        XCTAssertNotNil(try run(#"{"execute": "migrate-set-parameters", "arguments": {"downtime-limit": "10"}}"#)["error"])
        XCTAssertNotNil(try run(#"{"execute": "migrate-set-parameters", "arguments": {"downtime-limit": -1}}"#)["error"])
        XCTAssertEqual(try run(#"{"execute": "migrate-set-parameters", "arguments": {"xbzrle-cache-size": 1}}"#)["error"]?["desc"],
                       .string("Parameter 'xbzrle-cache-size' is unexpected"))

        // Integers stay integers: bytes per second, not the human monitor's MiB, up to QEMU's limit.
        XCTAssertEqual(try run(#"{"execute": "migrate-set-parameters", "arguments": {"max-bandwidth": 1}}"#), .object([("return", .emptyObject)]))
        XCTAssertEqual(controller.parameters.maxBandwidth, 1)
        XCTAssertEqual(try run(#"{"execute": "migrate-set-parameters", "arguments": {"max-bandwidth": 9223372036854775807}}"#), .object([("return", .emptyObject)]))
        XCTAssertEqual(try run(#"{"execute": "query-migrate-parameters"}"#)["return"]?["max-bandwidth"], .integer(.max))
        XCTAssertEqual(try run(#"{"execute": "migrate-set-parameters", "arguments": {"cpu-throttle-initial": 300}}"#)["error"]?["desc"],
                       .string("Parameter 'cpu-throttle-initial' expects an integer in the range of 1 to 99"))
        XCTAssertEqual(try run(#"{"execute": "migrate-set-parameters", "arguments": {"max-bandwidth": true}}"#)["error"]?["desc"],
                       .string("Invalid parameter type for 'max-bandwidth', expected: uint64"))
        XCTAssertEqual(try run(#"{"execute": "migrate-set-parameters", "arguments": {"max-bandwidth": 1000000}}"#), .object([("return", .emptyObject)]))

        XCTAssertEqual(try run(#"{"execute": "query-migrate-parameters"}"#)["return"], .object([
            ("throttle-trigger-threshold", .integer(50)), ("cpu-throttle-initial", .integer(20)),
            ("cpu-throttle-increment", .integer(10)), ("max-cpu-throttle", .integer(80)),
            ("tls-creds", .string("")), ("tls-hostname", .string("")),
            ("max-bandwidth", .integer(1_000_000)), ("downtime-limit", .integer(1500)),
            ("multifd-channels", .integer(2)), ("multifd-compression", .string("none")), ("multifd-zstd-level", .integer(1)),
            ("tls-authz", .string("")),
        ]))
        // QAPI StrOrNull: a string sets TLS credentials, null clears them.
        XCTAssertEqual(try run(#"{"execute": "migrate-set-parameters", "arguments": {"tls-creds": "tls0", "tls-authz": "auth0"}}"#), .object([("return", .emptyObject)]))
        XCTAssertEqual(controller.parameters.tlsCreds, "tls0")
        XCTAssertEqual(controller.parameters.tlsAuthz, "auth0")
        XCTAssertEqual(try run(#"{"execute": "migrate-set-parameters", "arguments": {"tls-creds": null}}"#), .object([("return", .emptyObject)]))
        XCTAssertEqual(controller.parameters.tlsCreds, "")
    }

    func testObjectAddAndDelManageTLSObjects() throws {
        XCTAssertEqual(try run(#"{"execute": "object-add", "arguments": {"qom-type": "authz-simple", "id": "auth0", "identity": "CN=src"}}"#),
                       .object([("return", .emptyObject)]))
        XCTAssertEqual(try controller.tlsObjects.authorization(id: "auth0").identity, "CN=src")
        XCTAssertEqual(try run(#"{"execute": "object-add", "arguments": {"qom-type": "authz-simple", "id": "auth0", "identity": "CN=x"}}"#)["error"]?["desc"],
                       .string("Duplicate ID 'auth0' for object"))
        let missing = try run(#"{"execute": "object-add", "arguments": {"qom-type": "tls-creds-x509", "id": "tls0", "dir": "/nonexistent", "endpoint": "server", "verify-peer": true}}"#)
        XCTAssertEqual(missing["error"]?["desc"], .string("Unable to use credentials /nonexistent/ca-cert.pem: No such file or directory"))
        XCTAssertEqual(try run(#"{"execute": "object-del", "arguments": {"id": "auth0"}}"#), .object([("return", .emptyObject)]))
        XCTAssertEqual(try run(#"{"execute": "object-del", "arguments": {"id": "auth0"}}"#)["error"]?["desc"],
                       .string("No TLS credentials or authz object with id 'auth0'"))
    }

    func testCapabilities() throws {
        XCTAssertEqual(try run(#"{"execute": "migrate-set-capabilities", "arguments": {"capabilities": [{"capability": "events", "state": true}, {"capability": "auto-converge", "state": true}]}}"#),
                       .object([("return", .emptyObject)]))
        XCTAssertTrue(controller.capabilities.events)
        XCTAssertTrue(controller.capabilities.autoConverge)
        XCTAssertNotNil(try run(#"{"execute": "migrate-set-capabilities", "arguments": {"capabilities": [{"capability": "events", "state": false}, {"capability": "xbzrle", "state": true}]}}"#)["error"])
        XCTAssertTrue(controller.capabilities.events, "a refused set changes nothing")
        XCTAssertNotNil(try run(#"{"execute": "migrate-set-capabilities", "arguments": {"capabilities": {"capability": "events"}}}"#)["error"])
        XCTAssertNotNil(try run(#"{"execute": "migrate-set-capabilities", "arguments": {"capabilities": [{"capability": "events", "state": "on"}]}}"#)["error"])

        guard case .array(let list)? = try run(#"{"execute": "query-migrate-capabilities"}"#)["return"] else { return XCTFail() }
        XCTAssertEqual(list.count, MigrationCapability.all.count)
        XCTAssertTrue(list.contains(.object([("capability", .string("events")), ("state", .bool(true))])))
        XCTAssertTrue(list.contains(.object([("capability", .string("xbzrle")), ("state", .bool(false))])))
    }

    func testQueryMigrateShapes() throws {
        XCTAssertEqual(try run(#"{"execute": "query-migrate"}"#), .object([("return", .emptyObject)]))
        var stats = MigrationStats()
        stats.status = .completed
        stats.totalTimeMs = 633; stats.downtimeMs = 22; stats.setupTimeMs = 1
        stats.transferredBytes = 150_000_000; stats.totalBytes = 174_923_776
        stats.normalPages = 36376; stats.duplicatePages = 56524; stats.dirtySyncCount = 5; stats.throughputMbps = 1900.25
        let json = QMPMigrationCommands.json(stats)
        XCTAssertEqual(json["status"], .string("completed"))
        XCTAssertEqual(json["downtime"], .integer(22))
        XCTAssertNil(json["expected-downtime"])
        XCTAssertEqual(json["ram"]?["normal-bytes"], .integer(36376 * 4096))
        XCTAssertEqual(json["ram"]?["page-size"], .integer(4096))
        XCTAssertEqual(json["ram"]?["mbps"], .double(1900.25))
        XCTAssertEqual(json["ram"]?["dirty-sync-count"], .integer(5))

        stats.status = .active
        stats.expectedDowntimeMs = 40
        stats.dirtyPagesRate = 1000
        let active = QMPMigrationCommands.json(stats)
        XCTAssertEqual(active["expected-downtime"], .integer(40))
        XCTAssertNil(active["downtime"])
        XCTAssertEqual(active["ram"]?["dirty-pages-rate"], .integer(1000))

        stats.status = .failed(reason: "Connection refused")
        let failed = QMPMigrationCommands.json(stats)
        XCTAssertEqual(failed["error-desc"], .string("Connection refused"))
        XCTAssertNil(failed["ram"])
    }

    func testMigrateValidatesItsArgumentsAndIncomingIsPassedOn() throws {
        XCTAssertEqual(try run(#"{"execute": "migrate", "arguments": {"uri": "ftp:nowhere"}}"#)["error"]?["class"], .string("GenericError"))
        XCTAssertEqual(try run(#"{"execute": "migrate", "arguments": {"uri": ["tcp:x:1"]}}"#)["error"]?["desc"],
                       .string("Invalid parameter type for 'uri', expected: string"))
        XCTAssertEqual(controller.stats.status, .none)
        XCTAssertEqual(try run(#"{"execute": "migrate-incoming", "arguments": {"uri": "tcp:127.0.0.1:4444"}}"#), .object([("return", .emptyObject)]))
        XCTAssertEqual(incomingURIs, ["tcp:127.0.0.1:4444"])
        XCTAssertEqual(try run(#"{"execute": "migrate_cancel"}"#), .object([("return", .emptyObject)]))
    }
}
