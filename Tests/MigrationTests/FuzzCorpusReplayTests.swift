import Foundation
import Machine
import XCTest
@testable import Migration

/// Replays the fuzz campaign's seed corpus (fuzz/corpus/stream, real captured streams) and every
/// finding kept under Fixtures/FuzzCorpus through the destination's reader, with the same
/// digest rule the fuzz target uses (fuzz/Stream/StreamFuzzer.swift). Seeds must load; every other
/// input must end in a refusal that reads well or a clean load, never a trap.
final class FuzzCorpusReplayTests: XCTestCase {
    private static let packageRoot = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    private func files(in relative: String) throws -> [URL] {
        let folder = Self.packageRoot.appendingPathComponent(relative)
        return try FileManager.default.contentsOfDirectory(at: folder, includingPropertiesForKeys: nil)
            .filter { !$0.lastPathComponent.hasPrefix(".") }
            .sorted { $0.lastPathComponent < $1.lastPathComponent }
    }

    /// The fuzz target's destination: two regions of 64 and 32 KiB, one vCPU, one serial port.
    private func destination() -> FakeMachine {
        FakeMachine(regionSizes: [64 * 1024, 32 * 1024], running: false)
    }

    func testSeedStreamsLoad() throws {
        let seeds = try files(in: "fuzz/corpus/stream")
        XCTAssertGreaterThanOrEqual(seeds.count, 4)
        for seed in seeds {
            let machine = destination()
            let (result, reply) = receive(Array(try Data(contentsOf: seed)), into: machine)
            XCTAssertNoThrow(try result.get(), seed.lastPathComponent)
            XCTAssertEqual(reply, .ack, seed.lastPathComponent)
            XCTAssertEqual(machine.resumeCount, 1, seed.lastPathComponent)
        }
    }

    func testFindingsAreRefusedCleanly() throws {
        let findings = try files(in: "Tests/MigrationTests/Fixtures/FuzzCorpus")
        XCTAssertFalse(findings.isEmpty)
        for finding in findings {
            var bytes = Array(try Data(contentsOf: finding))
            sealDigest(&bytes)
            let machine = destination()
            let (result, reply) = receive(bytes, into: machine)
            let name = finding.lastPathComponent
            switch result {
            case .success:
                XCTAssertEqual(machine.loadedStates.count, 1, name)
                XCTAssertEqual(reply, .ack, name)
            case .failure(let error):
                XCTAssertEqual(machine.resumeCount, 0, name)
                XCTAssertTrue(machine.loadedStates.isEmpty, name)
                XCTAssertFalse("\(error)".isEmpty, name)
                if case .error(let message)? = reply { XCTAssertEqual(message, "\(error)", name) }
            }
        }
    }

    /// As in the fuzz target: a trailing end marker gets the digest of the bytes before it.
    private func sealDigest(_ bytes: inout [UInt8]) {
        let count = bytes.count
        guard count >= 9, bytes[count - 9] == StreamFormat.Tag.end.rawValue else { return }
        bytes.replaceSubrange((count - 8)..<count, with: le64(StreamDigest.ofStream(Array(bytes[0..<(count - 8)]))))
    }
}
