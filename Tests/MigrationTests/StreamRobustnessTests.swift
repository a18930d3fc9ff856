import Glibc
import Machine
import XCTest
@testable import Migration

/// The destination faces an untrusted stream: every broken or hostile stream must be refused
/// before anything is loaded or resumed.
final class StreamRobustnessTests: XCTestCase {
    private func smallSource() -> FakeMachine {
        let machine = FakeMachine(regionSizes: [64 * 1024, 32 * 1024])
        machine.fillPattern(seed: 11)
        return machine
    }

    func testCapturedStreamLoadsIntoAFreshMachine() throws {
        let source = smallSource()
        let stream = try captureStream(of: source)
        let destination = FakeMachine(regionSizes: [64 * 1024, 32 * 1024], running: false)
        let (result, reply) = receive(stream, into: destination)
        let report = try result.get()
        XCTAssertEqual(reply, .ack)
        XCTAssertTrue(source.ramEquals(destination))
        XCTAssertEqual(report.passes, 1)
        XCTAssertEqual(report.stateSections, 3)
        XCTAssertEqual(destination.loadedStates.first?.sections.map(\.name), ["serial0", "cpu0", "vm"])
    }

    func testTheGuestArrivesInTheRunStateItHadOnTheSource() throws {
        let cases: [(source: RunState?, destination: RunState)] = [
            (nil, .running),  // a stream without the section, as 1.0 wrote: running
            (.running, .running),
            (.paused(nil), .paused(nil)),
            (.paused(.shutdown), .paused(.shutdown)),
            (.paused(.guestPanicked), .paused(.guestPanicked)),
            (.paused(.postmigrate), .paused(nil)),  // describes a migration, not the guest
        ]
        for item in cases {
            let stream = try captureStream(of: smallSource(), runState: item.source)
            let destination = FakeMachine(regionSizes: [64 * 1024, 32 * 1024], running: false)
            let (result, reply) = receive(stream, into: destination)
            let report = try result.get()
            XCTAssertEqual(reply, .ack)
            XCTAssertEqual(destination.runState, item.destination, "source \(String(describing: item.source))")
            XCTAssertEqual(destination.resumeCount, item.destination == .running ? 1 : 0)
            XCTAssertEqual(report.sourceState, item.source ?? .running)
            XCTAssertEqual(report.stateSections, 3, "the run state is the migration's, not the machine's")
            XCTAssertEqual(destination.loadedStates.first?.sections.map(\.name), ["serial0", "cpu0", "vm"])
        }
    }

    func testBadRunStateSectionsAreRefused() throws {
        let bad: [[StateSection]] = [
            [StateSection(name: "run-state", version: 1, bytes: Array("paused (sleeping)".utf8))],
            [StateSection(name: "run-state", version: 1, bytes: Array("RUNNING".utf8))],
            [StateSection(name: "run-state", version: 2, bytes: Array("running".utf8))],
            [StateSection(name: "run-state", version: 1, bytes: [UInt8](repeating: 0x41, count: 4096))],
            [RunStateSection.section(for: .running), RunStateSection.section(for: .paused(nil))],
        ]
        for sections in bad {
            let stream = try captureStream(of: smallSource(), extraSections: sections)
            let destination = FakeMachine(regionSizes: [64 * 1024, 32 * 1024], running: false)
            let (result, _) = receive(stream, into: destination)
            guard case .failure(let error) = result else { return XCTFail("accepted \(sections)") }
            XCTAssertTrue("\(error)".contains("run-state"), "\(error)")
            XCTAssertTrue(destination.loadedStates.isEmpty)
            XCTAssertEqual(destination.resumeCount, 0)
        }
    }

    func testTruncatedStreamIsRefusedAtEveryOffset() throws {
        let stream = try captureStream(of: smallSource())
        var offsets = Array(0..<80)
        offsets += stride(from: 80, to: stream.count, by: max(1, stream.count / 60))
        offsets += (stream.count - 20)..<stream.count
        for length in offsets {
            let destination = FakeMachine(regionSizes: [64 * 1024, 32 * 1024], running: false)
            let (result, _) = receive(Array(stream[0..<length]), into: destination)
            guard case .failure(let error) = result else { return XCTFail("a stream cut at \(length) was accepted") }
            XCTAssertTrue("\(error)".contains("closed the connection") || length < 4, "cut at \(length): \(error)")
            XCTAssertTrue(destination.loadedStates.isEmpty, "state loaded from a stream cut at \(length)")
            XCTAssertEqual(destination.resumeCount, 0)
            XCTAssertEqual(destination.runState, .paused(.inmigrate))
        }
    }

    func testCorruptedPayloadByteIsCaughtByTheDigest() throws {
        let source = smallSource()
        // A page of a recognisable byte, so the test can find its payload in the stream.
        memset(source.ramRegions[1].host + 2 * 4096, 0x5A, 4096)
        var stream = try captureStream(of: source)
        let marker = [UInt8](repeating: 0x5A, count: 64)
        guard let at = (0..<(stream.count - 64)).first(where: { stream[$0] == 0x5A && Array(stream[$0..<$0 + 64]) == marker }) else {
            return XCTFail("payload not found")
        }
        stream[at + 1000] ^= 0x01
        let destination = FakeMachine(regionSizes: [64 * 1024, 32 * 1024], running: false)
        let (result, reply) = receive(stream, into: destination)
        guard case .failure(let error) = result, case .digestMismatch = error as? MigrationError else {
            return XCTFail("corruption not detected: \(result)")
        }
        XCTAssertTrue(destination.loadedStates.isEmpty)
        XCTAssertEqual(destination.resumeCount, 0)
        guard case .error(let message)? = reply else { return XCTFail("source not told") }
        XCTAssertTrue(message.contains("digest mismatch"), message)
    }

    func testNewerMajorVersionIsRefusedNamingBothVersions() {
        var stream = StreamFormat.magic
        stream += [3, 0, 3, 0]  // version 3.3
        let destination = FakeMachine(regionSizes: [4096], running: false)
        let (result, reply) = receive(stream, into: destination)
        guard case .failure(let error) = result else { return XCTFail("accepted") }
        XCTAssertEqual("\(error)", "migration stream: format version 3.3 is newer than this swiftkvm supports (2.0); upgrade the destination")
        XCTAssertEqual(reply, .error("\(error)"))
    }

    func testBadMagicIsRefused() {
        let (result, _) = receive(Array("QEVM".utf8) + [0, 0, 0, 3], into: FakeMachine(regionSizes: [4096], running: false))
        guard case .failure(let error) = result else { return XCTFail("accepted") }
        XCTAssertEqual(error as? MigrationError, .notAMigrationStream)
    }

    /// Header and layout for a 64 KiB single-region machine, then `records`.
    private func handmade(_ records: [UInt8]) -> [UInt8] {
        var bytes = StreamFormat.magic + [1, 0, 0, 0]
        bytes += [0x01] + le32(1) + le64(0) + le64(64 * 1024) + le32(1) + le32(1) + le16(20) + Array("serial0:16550a@0x3f8".utf8)
        return bytes + records
    }

    private func expectRefusal(_ records: [UInt8], containing text: String, file: StaticString = #filePath, line: UInt = #line) {
        let destination = FakeMachine(regionSizes: [64 * 1024], running: false)
        let (result, _) = receive(handmade(records), into: destination)
        guard case .failure(let error) = result else { return XCTFail("accepted", file: file, line: line) }
        XCTAssertTrue("\(error)".contains(text), "\(error)", file: file, line: line)
        XCTAssertTrue(destination.loadedStates.isEmpty, file: file, line: line)
        XCTAssertEqual(destination.resumeCount, 0, file: file, line: line)
    }

    func testOutOfRangeValuesAreRefusedBeforeUse() {
        expectRefusal([0x02] + le32(1) + le64(0) + le32(1) + [2], containing: "region 1; the machine has 1")
        expectRefusal([0x02] + le32(0) + le64(15) + le32(2) + [2, 2], containing: "pages 15+2 of region 0, which has 16")
        expectRefusal([0x02] + le32(0) + le64(UInt64.max) + le32(1) + [2], containing: "of region 0, which has 16")
        expectRefusal([0x02] + le32(0) + le64(0) + le32(0), containing: "RAM batch of 0 pages")
        expectRefusal([0x02] + le32(0) + le64(0) + le32(100_000), containing: "RAM batch of 100000 pages")
        expectRefusal([0x02] + le32(0) + le64(0) + le32(1) + [9], containing: "page kind 9")
        expectRefusal([0x03] + le32(2), containing: "pass 2 ended where pass 1 was expected")
        expectRefusal([0x04] + le16(3) + Array("cpu".utf8) + le32(1) + le32(0xFFFF_FFFF), containing: "claims 4294967295 bytes")
        expectRefusal([0x04] + le16(60000), containing: "claims 60000 bytes")
        expectRefusal([0x04] + le16(3) + Array("cpu".utf8) + le32(1) + le32(0) + [0x02], containing: "RAM after device state")
        expectRefusal([0x77], containing: "unknown record tag 0x77")
        expectRefusal([0x05] + le64(0), containing: "digest mismatch")
    }

    /// A well-formed stream whose digest matches, so only the RAM check can refuse it.
    private func sealed(_ records: [UInt8]) -> [UInt8] {
        let bytes = handmade(records) + [StreamFormat.Tag.end.rawValue]
        return bytes + le64(StreamDigest.ofStream(bytes))
    }

    private func stateRecords() -> [UInt8] {
        FakeMachine.defaultSections.flatMap { section -> [UInt8] in
            [0x04] + le16(UInt16(section.name.utf8.count)) + Array(section.name.utf8)
                + le32(section.version) + le32(UInt32(section.bytes.count)) + section.bytes
        }
    }

    func testAStreamWithoutEveryPageIsRefusedBeforeTheGuestRuns() {
        // Layout, state and end marker, but no RAM: the guest would run on zeroed memory.
        let destination = FakeMachine(regionSizes: [64 * 1024], running: false)
        let (result, reply) = receive(sealed([0x03] + le32(1) + stateRecords()), into: destination)
        guard case .failure(let error) = result else { return XCTFail("a stream without pages was accepted") }
        XCTAssertEqual("\(error)", "migration stream is incomplete: 16 pages of guest RAM never arrived (the first at guest-physical 0x0); the guest was not started")
        XCTAssertEqual(reply, .error("\(error)"))
        XCTAssertTrue(destination.loadedStates.isEmpty)
        XCTAssertEqual(destination.resumeCount, 0)

        // All pages but one (zero markers, and page 9 only ever "not in this batch").
        var kinds = [UInt8](repeating: 1, count: 16)
        kinds[9] = 0
        let oneMissing = sealed([0x02] + le32(0) + le64(0) + le32(16) + kinds + [0x03] + le32(1) + stateRecords())
        let second = FakeMachine(regionSizes: [64 * 1024], running: false)
        guard case .failure(let missing) = receive(oneMissing, into: second).0 else { return XCTFail("a missing page was accepted") }
        XCTAssertTrue("\(missing)".contains("1 pages of guest RAM never arrived (the first at guest-physical 0x9000)"), "\(missing)")
        XCTAssertEqual(second.resumeCount, 0)

        // Every page, as zero markers and data spread over two passes: accepted.
        kinds[9] = 2
        let complete = sealed([0x02] + le32(0) + le64(0) + le32(8) + [UInt8](repeating: 1, count: 8) + [0x03] + le32(1)
                              + [0x02] + le32(0) + le64(8) + le32(8) + [1, 2, 1, 1, 1, 1, 1, 1] + [UInt8](repeating: 0x33, count: 4096)
                              + [0x03] + le32(2) + stateRecords())
        let third = FakeMachine(regionSizes: [64 * 1024], running: false)
        XCTAssertNoThrow(try receive(complete, into: third).0.get())
        XCTAssertEqual(third.resumeCount, 1)
    }

    func testLayoutWithHostileCountsIsRefused() {
        var stream = StreamFormat.magic + [1, 0, 0, 0]
        stream += [0x01] + le32(0xFFFF_FFFF)
        let (result, _) = receive(stream, into: FakeMachine(regionSizes: [4096], running: false))
        guard case .failure(let error) = result else { return XCTFail("accepted") }
        XCTAssertEqual("\(error)", "migration stream is corrupt: layout lists 4294967295 RAM regions (at most 64)")
    }

    func testLayoutDifferencesAreWorded() {
        let local = MachineLayout(ramRegions: [.init(guestAddress: 0, size: 128 << 20)], vcpuCount: 1, devices: ["a", "b"])
        var stream = local
        XCTAssertNil(LayoutCheck.difference(stream: stream, local: local))
        stream.ramRegions = [.init(guestAddress: 0, size: 256 << 20)]
        XCTAssertEqual(LayoutCheck.difference(stream: stream, local: local),
                       "RAM size differs: stream has 256 MiB, this machine has 128 MiB")
        stream = local
        stream.ramRegions = [.init(guestAddress: 0, size: 64 << 20), .init(guestAddress: 1 << 32, size: 64 << 20)]
        XCTAssertEqual(LayoutCheck.difference(stream: stream, local: local),
                       "RAM layout differs: stream has 2 regions, this machine has 1")
        stream = local
        stream.ramRegions = [.init(guestAddress: 0x100000, size: 128 << 20)]
        XCTAssertEqual(LayoutCheck.difference(stream: stream, local: local),
                       "RAM region 0 differs: stream has 128 MiB at 0x100000, this machine has 128 MiB at 0x0")
        stream = local
        stream.vcpuCount = 2
        XCTAssertEqual(LayoutCheck.difference(stream: stream, local: local), "vCPU count differs: stream has 2, this machine has 1")
        stream = local
        stream.devices = ["a", "c"]
        XCTAssertEqual(LayoutCheck.difference(stream: stream, local: local),
                       "device list differs: this machine lacks c; the stream lacks b")
    }
}

func le16(_ v: UInt16) -> [UInt8] { withUnsafeBytes(of: v.littleEndian) { Array($0) } }
func le32(_ v: UInt32) -> [UInt8] { withUnsafeBytes(of: v.littleEndian) { Array($0) } }
func le64(_ v: UInt64) -> [UInt8] { withUnsafeBytes(of: v.littleEndian) { Array($0) } }
