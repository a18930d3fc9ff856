import Foundation
import Glibc
import XCTest

/// Faults on the path between two real swiftkvm processes, made by a proxy the test controls
/// (FaultProxy): the connection cut at each phase, the source killed at each phase, and a
/// destination that stops reading. Whatever happens before the destination's ack reaches it,
/// the source's guest keeps running from where it was, and a new migration then succeeds.
final class PathFaultTests: XCTestCase {
    let dirtyArgs = ["-m", "150M", "-kernel", Paths.guest("dirty.elf"), "-append", "base=4M size=96M every=64",
                     "-device", "isa-debug-exit,iobase=0xf4,iosize=0x04"]
    /// Converges; the default 128 MiB/s never does against this guest, so with `endless`
    /// passes go on until the fault.
    let converging = MigrationSettings.converging
    let endless = "migrate_set_parameter max-bandwidth 128M\nmigrate_set_parameter downtime-limit 300\n"

    static let laterPass: (StreamRecord.Kind) -> Bool = { if case .ramBatch(let pass) = $0 { return pass >= 2 } else { return false } }
    static let switchover: (StreamRecord.Kind) -> Bool = { if case .state = $0 { return true } else { return false } }

    func count(_ needle: String, in text: String) -> Int { text.components(separatedBy: needle).count - 1 }

    func destination() throws -> (SwiftKVMProcess, Int) {
        let port = Loopback.freePort()
        let process = try SwiftKVMProcess(dirtyArgs + ["-incoming", "tcp:127.0.0.1:\(port)"])
        process.send("info status\n")
        XCTAssertTrue(process.waitForOutput("VM status: paused (inmigrate)"), process.stdout + process.stderr)
        return (process, port)
    }

    func runningSource() throws -> SwiftKVMProcess {
        let source = try SwiftKVMProcess(dirtyArgs)
        XCTAssertTrue(source.waitForOutput("sweep 64"), source.stdout)
        return source
    }

    /// The migration failed, the source's guest runs again and its own check keeps passing.
    func assertSourceRecovered(_ source: SwiftKVMProcess, _ what: String, file: StaticString = #filePath, line: UInt = #line) {
        let report = migrationReport(source, until: ["failed", "completed", "cancelled"])
        XCTAssertTrue(report.hasPrefix("failed ("), "\(what): \(report)", file: file, line: line)
        let running = count("VM status: running", in: source.stdout)
        source.send("info status\n")
        XCTAssertTrue(source.waitForOutput("VM status: running", count: running + 1), "\(what): \(source.stdout.suffix(500))", file: file, line: line)
        let sweeps = count("sweep ", in: source.stdout)
        XCTAssertTrue(source.waitFor { $0.components(separatedBy: "sweep ").count - 1 > sweeps + 3 }, "\(what): the guest must keep running", file: file, line: line)
        XCTAssertFalse(source.stdout.contains("MISMATCH"), what, file: file, line: line)
    }

    func assertNeverRan(_ destination: SwiftKVMProcess, _ what: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(destination.waitForExit(seconds: 90), 1, "\(what): \(destination.stderr)", file: file, line: line)
        XCTAssertTrue(destination.stderr.contains("incoming migration failed"), "\(what): \(destination.stderr)", file: file, line: line)
        XCTAssertFalse(destination.stdout.contains("sweep"), "\(what): a half-received guest ran", file: file, line: line)
    }

    func testConnectionCutAtEachPhaseLeavesTheSourceRunningAndARetrySucceeds() throws {
        let source = try runningSource()
        defer { source.kill() }
        let cuts: [(String, FaultProxy.Fault, String)] = [
            ("cut during pass 1", .cutAfterBytes(4 << 20), endless),
            ("cut during a later pass", .cutAtRecord(Self.laterPass), endless),
            ("cut during switchover", .cutAtRecord(Self.switchover), converging),
        ]
        for (what, fault, parameters) in cuts {
            let (dst, port) = try destination()
            let proxy = FaultProxy(to: port, fault: fault)
            source.send(parameters + "migrate -d tcp:127.0.0.1:\(proxy.port)\n")
            XCTAssertTrue(proxy.waitUntilFired(), "\(what): the fault never happened: \(source.stdout.suffix(500))")
            assertSourceRecovered(source, what)
            assertNeverRan(dst, what)
            proxy.close()
        }

        // The ack lost on its way back: the destination already runs the guest; the source
        // cannot know and resumes too (README: "When things go wrong").
        let (dst, port) = try destination()
        let proxy = FaultProxy(to: port, fault: .dropAck)
        source.send(converging + "migrate -d tcp:127.0.0.1:\(proxy.port)\n")
        XCTAssertTrue(proxy.waitUntilFired(), source.stdout.suffix(500) + source.stderr)
        assertSourceRecovered(source, "ack lost")
        XCTAssertTrue(source.stdout.contains("waiting for the destination's acknowledgement"), source.stdout.suffix(800) + source.stderr)
        XCTAssertTrue(dst.waitForOutput("sweep"), "the destination runs the guest it fully received: \(dst.stderr)")
        dst.kill()

        // A new migration then succeeds.
        let (final, finalPort) = try destination()
        defer { final.kill() }
        source.send(converging + "migrate -d tcp:127.0.0.1:\(finalPort)\n")
        let report = migrationReport(source, until: ["completed", "failed"])
        XCTAssertTrue(report.hasPrefix("completed"), report + source.stderr)
        XCTAssertTrue(final.waitForOutput("sweep"), final.stdout + final.stderr)
        XCTAssertFalse(final.stdout.contains("MISMATCH"))
    }

    func testSourceKilledAtEachPhaseDestinationNeverRunsTheGuest() throws {
        let phases: [(String, (StreamRecord.Kind) -> Bool, String)] = [
            ("source killed during pass 1", { if case .ramBatch = $0 { return true } else { return false } }, endless),
            ("source killed during a later pass", Self.laterPass, endless),
            ("source killed during switchover", Self.switchover, converging),
        ]
        for (what, phase, parameters) in phases {
            let source = try runningSource()
            let (dst, port) = try destination()
            let pid = source.process.processIdentifier
            // The source dies as the record starts; the proxy forwards nothing of it, as a
            // connection whose writer died there.
            let proxy = FaultProxy(to: port, fault: .cutAtRecord(phase))
            var killed = false
            proxy.onRecord = { record in
                if !killed && phase(record.kind) { killed = true; kill(pid, SIGKILL) }
            }
            source.send(parameters + "migrate -d tcp:127.0.0.1:\(proxy.port)\n")
            XCTAssertTrue(proxy.waitUntilFired(), what)
            assertNeverRan(dst, what)
            XCTAssertTrue(dst.stderr.contains("closed the connection"), "\(what): \(dst.stderr)")
            source.kill()
            proxy.close()
        }
    }

    func testDestinationThatStopsReadingFailsWithinTheStallTimeout() throws {
        let source = try runningSource()
        defer { source.kill() }
        let (dst, port) = try destination()
        defer { dst.kill() }
        let proxy = FaultProxy(to: port, fault: .stallAfterBytes(8 << 20))
        defer { proxy.close() }
        source.send(endless + "migrate -d tcp:127.0.0.1:\(proxy.port)\n")
        XCTAssertTrue(proxy.waitUntilFired())
        // The stall timeout is 10 s (README); the bound here only guards against a hang.
        assertSourceRecovered(source, "stalled destination")
        XCTAssertTrue(source.stdout.contains("made no progress for 10 s") || source.stderr.contains("made no progress for 10 s"),
                      source.stdout.suffix(800) + source.stderr)
    }
}
