import Machine
import XCTest
@testable import Migration

/// URIs as users write them; the typed parameters and capabilities every front end sets.
final class MigrationFormattingTests: XCTestCase {
    func testURIParsing() throws {
        XCTAssertEqual(try MigrationURI.parse("tcp:0:4444"), .tcp(host: "0", port: "4444"))
        XCTAssertEqual(try MigrationURI.parse("tcp::4444"), .tcp(host: "", port: "4444"))
        XCTAssertEqual(try MigrationURI.parse("tcp:localhost:4444"), .tcp(host: "localhost", port: "4444"))
        XCTAssertEqual(try MigrationURI.parse("tcp:[::1]:4444"), .tcp(host: "::1", port: "4444"))
        XCTAssertEqual(try MigrationURI.parse("unix:/tmp/mig.sock"), .unix(path: "/tmp/mig.sock"))
        XCTAssertTrue(try MigrationURI.parse("tcp:0:1").listensOnAllAddresses)
        XCTAssertTrue(try MigrationURI.parse("tcp:0.0.0.0:1").listensOnAllAddresses)
        XCTAssertFalse(try MigrationURI.parse("tcp:127.0.0.1:1").listensOnAllAddresses)
        XCTAssertEqual(try MigrationURI.parse("tcp:[::1]:4444").description, "tcp:[::1]:4444")
        XCTAssertEqual(try MigrationURI.parse("exec:ssh host swiftkvm -incoming stdio"), .exec(command: "ssh host swiftkvm -incoming stdio"))
        XCTAssertEqual(try MigrationURI.parse("stdio"), .stdio)
        XCTAssertEqual(try MigrationURI.parse("file:/var/lib/vm/a.snap"), .file(path: "/var/lib/vm/a.snap"))
        XCTAssertEqual(try MigrationURI.parse("file:rel/a b.snap").description, "file:rel/a b.snap")
        XCTAssertFalse(try MigrationURI.parse("file:x").hasReturnPath)
        XCTAssertTrue(try MigrationURI.parse("unix:x").hasReturnPath)
        for bad in ["foo", "tcp:", "tcp:host", "tcp:host:99999", "tcp:host:x", "unix:", "exec:", "exec:  ", "tcp:host:-1", "file:"] {
            XCTAssertThrowsError(try MigrationURI.parse(bad)) { error in
                XCTAssertEqual("\(error)", "migrate: invalid URI '\(bad)' (expected tcp:HOST:PORT, unix:PATH, exec:COMMAND or file:PATH; stdio only with -incoming)")
            }
        }
    }

    func testParameterDefaultsAreQEMUs() {
        let parameters = MigrationParameters()
        XCTAssertEqual(MigrationParameter.all.map(\.name), [
            "throttle-trigger-threshold", "cpu-throttle-initial", "cpu-throttle-increment", "max-cpu-throttle",
            "tls-creds", "tls-hostname", "max-bandwidth", "downtime-limit", "multifd-channels", "multifd-compression",
            "multifd-zstd-level", "tls-authz",
        ])
        XCTAssertEqual(MigrationParameter.all.map { parameters[$0] },
                       [.unsigned(50), .unsigned(20), .unsigned(10), .unsigned(99), .string(""), .string(""),
                        .unsigned(134_217_728), .unsigned(300), .unsigned(2), .string("none"), .unsigned(1), .string("")])
        XCTAssertEqual(parameters.multifdChannels, 2)
        XCTAssertFalse(parameters.compressesWithZstd)
        XCTAssertEqual(parameters.multifdZstdLevel, 1)
        XCTAssertEqual([parameters.tlsCreds, parameters.tlsHostname, parameters.tlsAuthz], ["", "", ""])
        XCTAssertEqual([parameters.throttleTriggerThreshold, parameters.cpuThrottleInitial, parameters.cpuThrottleIncrement,
                        parameters.maxCPUThrottle], [50, 20, 10, 99])
        XCTAssertEqual(parameters.maxBandwidth, 128 << 20)
        XCTAssertEqual(parameters.downtimeLimitMs, 300)
        for parameter in MigrationParameter.all {
            XCTAssertEqual(try parameter.checked(parameter.defaultValue), parameter.defaultValue, parameter.name)
            XCTAssertFalse(MigrationParameter.unsupportedNames.contains(parameter.name), parameter.name)
        }
    }

    func testSettingParametersChecksTypeAndRange() throws {
        var parameters = MigrationParameters()
        try parameters.set(.maxBandwidth, to: .unsigned(0))
        try parameters.set(.downtimeLimit, to: .unsigned(2_000_000))
        try parameters.set(.throttleTriggerThreshold, to: .unsigned(100))
        try parameters.set(.maxCPUThrottle, to: .unsigned(80))
        XCTAssertEqual(parameters.maxBandwidth, 0)
        XCTAssertEqual(parameters.downtimeLimitMs, 2_000_000)
        XCTAssertEqual(parameters.throttleTriggerThreshold, 100)
        try parameters.set([(.multifdChannels, .unsigned(255)), (.multifdCompression, .string("zstd")), (.multifdZstdLevel, .unsigned(20))])
        XCTAssertEqual([parameters.multifdChannels, parameters.multifdZstdLevel], [255, 20])
        XCTAssertTrue(parameters.compressesWithZstd)
        try parameters.set([(.multifdChannels, .unsigned(1)), (.multifdZstdLevel, .unsigned(0))])
        XCTAssertEqual([parameters.multifdChannels, parameters.multifdZstdLevel], [1, 0])

        let refusals: [(MigrationParameter, MigrationParameterValue, String)] = [
            (.maxCPUThrottle, .unsigned(100), "Parameter 'max-cpu-throttle' expects an integer in the range of 1 to 99"),
            (.maxCPUThrottle, .unsigned(0), "Parameter 'max-cpu-throttle' expects an integer in the range of 1 to 99"),
            (.throttleTriggerThreshold, .unsigned(101), "Parameter 'throttle-trigger-threshold' expects an integer in the range of 1 to 100"),
            (.downtimeLimit, .unsigned(2_000_001), "Parameter 'downtime-limit' expects an integer in the range of 0 to 2000000 milliseconds"),
            (.maxBandwidth, .unsigned(1 << 63), "Parameter 'max-bandwidth' expects an integer in the range of 0 to 9223372036854775807"),
            (.downtimeLimit, .bool(true), "Parameter 'downtime-limit' expects uint64"),
            (.cpuThrottleInitial, .string("20"), "Parameter 'cpu-throttle-initial' expects uint8"),
            (.multifdChannels, .unsigned(0), "Parameter 'multifd-channels' expects an integer in the range of 1 to 255"),
            (.multifdChannels, .unsigned(256), "Parameter 'multifd-channels' expects an integer in the range of 1 to 255"),
            (.multifdZstdLevel, .unsigned(21), "Parameter 'multifd-zstd-level' expects an integer in the range of 0 to 20"),
            (.multifdCompression, .string("zlib"), "Parameter 'multifd-compression' value 'zlib' is not supported: swiftkvm builds in only none and zstd"),
            (.multifdCompression, .string("lz4"), "Parameter 'multifd-compression' does not accept value 'lz4'"),
        ]
        for (parameter, value, message) in refusals {
            XCTAssertThrowsError(try parameters.set(parameter, to: value)) { XCTAssertEqual("\($0)", message) }
        }
        XCTAssertEqual(parameters.maxCPUThrottle, 80, "a refused value must not change the parameter")

        XCTAssertThrowsError(try parameters.set([(.downtimeLimit, .unsigned(5)), (.cpuThrottleInitial, .unsigned(100))]))
        XCTAssertEqual(parameters.downtimeLimitMs, 2_000_000, "a refused set changes nothing")
    }

    func testParametersAreFoundByName() throws {
        XCTAssertEqual(try MigrationParameter.named("downtime-limit"), .downtimeLimit)
        XCTAssertEqual(try MigrationParameter.named("multifd-zstd-level"), .multifdZstdLevel)
        XCTAssertThrowsError(try MigrationParameter.named("multifd-zlib-level")) {
            XCTAssertEqual("\($0)", "Parameter 'multifd-zlib-level' is not supported by swiftkvm")
        }
        XCTAssertThrowsError(try MigrationParameter.named("no-such-thing")) {
            XCTAssertEqual("\($0)", "invalid parameter value: no-such-thing")
        }
    }

    func testChoicesAndWordsAreChecked() throws {
        let compression = MigrationParameter("multifd-compression", .choice(["none", "zlib", "zstd"]),
                                             default: .string("none"), "test entry")
        XCTAssertEqual(try compression.checked(.string("zstd")), .string("zstd"))
        XCTAssertThrowsError(try compression.checked(.string("lz4"))) {
            XCTAssertEqual("\($0)", "Parameter 'multifd-compression' does not accept value 'lz4'")
        }
        XCTAssertThrowsError(try compression.checked(.unsigned(1))) {
            XCTAssertEqual("\($0)", "Parameter 'multifd-compression' expects string")
        }
    }

    func testCapabilities() throws {
        var capabilities = MigrationCapabilities()
        XCTAssertEqual(MigrationCapability.all.count, 22)
        XCTAssertEqual(MigrationCapability.all.prefix(3).map(\.name), ["xbzrle", "rdma-pin-all", "auto-converge"])
        XCTAssertEqual(Set(MigrationCapability.all.filter(\.isSupported)), [.autoConverge, .events, .returnPath, .postcopyRAM, .postcopyBlocktime, .multifd, .ignoreShared, .mappedRAM])
        XCTAssertTrue(MigrationCapability.all.allSatisfy { !capabilities.isOn($0) }, "all off by default, as in QEMU")
        try capabilities.set(.autoConverge, on: true)
        try capabilities.set(.events, on: true)
        try capabilities.set(.returnPath, on: true)
        try capabilities.set(try MigrationCapability.named("xbzrle"), on: false)
        XCTAssertTrue(capabilities.autoConverge && capabilities.events && capabilities.returnPath)
        XCTAssertThrowsError(try capabilities.set(try MigrationCapability.named("xbzrle"), on: true)) {
            XCTAssertEqual("\($0)", "Capability 'xbzrle' is not supported by swiftkvm")
        }
        XCTAssertThrowsError(try MigrationCapability.named("warp-drive")) {
            XCTAssertEqual("\($0)", "invalid parameter value: warp-drive")
        }
        XCTAssertThrowsError(try capabilities.set([(.events, false), (try MigrationCapability.named("xbzrle"), true)]))
        XCTAssertTrue(capabilities.events, "a refused set changes nothing")
    }

    func testMappedRAMRefusesCompression() throws {
        var capabilities = MigrationCapabilities()
        try capabilities.set([(.mappedRAM, true), (.multifd, true)])
        var parameters = MigrationParameters()
        let file = try MigrationURI.parse("file:/tmp/snapshot")
        XCTAssertNoThrow(try MigrationController.check(capabilities, parameters, with: file))
        try parameters.set(.multifdCompression, to: .string("zstd"))
        XCTAssertThrowsError(try MigrationController.check(capabilities, parameters, with: file)) {
            XCTAssertEqual("\($0)", "mapped-ram is incompatible with multifd-compression zstd: set multifd-compression none")
        }
    }
}
