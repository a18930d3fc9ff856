import Foundation
import Glibc
import XCTest

/// Migration over TLS between two real swiftkvm processes, with credentials the test makes:
/// a good migration, and every way the two sides can disagree, each refused on both sides with
/// a clear error while the source guest keeps running and the destination never runs it.
final class TLSMigrationTests: XCTestCase {
    let tlsOn = "migrate_set_parameter tls-creds tls0\n"
    let small = ["-m", "64M", "-kernel", Paths.guest("hello.elf")]

    func testDirtyGuestMigratesOverTLSWithAuthzAndKeepsCheckingMemory() throws {
        let pki = try TLSTestCredentials(self)
        let port = freeLoopbackPort()
        let dirty = ["-m", "64M", "-kernel", Paths.guest("dirty.elf"), "-append", "base=4M size=32M every=64",
                     "-device", "isa-debug-exit,iobase=0xf4,iosize=0x04"]
        // QEMU's way of writing a distinguished name with commas inside -object: doubled.
        let authz = ["-object", "authz-simple,id=auth0,identity=" + TLSTestCredentials.clientIdentity.replacingOccurrences(of: ",", with: ",,")]
        let dst = try SwiftKVMProcess(dirty + TLSTestCredentials.x509(pki.good, "server") + authz + ["-incoming", "tcp:127.0.0.1:\(port)"])
        dst.send(tlsOn + "migrate_set_parameter tls-authz auth0\ninfo migrate_parameters\n")
        XCTAssertTrue(dst.waitForOutput("tls-authz: 'auth0'"), dst.stdout + dst.stderr)
        XCTAssertTrue(dst.stdout.contains("tls-creds: 'tls0'"), dst.stdout)
        let src = try SwiftKVMProcess(dirty + TLSTestCredentials.x509(pki.good, "client"))
        XCTAssertTrue(src.waitForOutput("sweep 64"), src.stdout)
        src.send(tlsOn + "migrate_set_parameter max-bandwidth 10G\nmigrate_set_capability auto-converge on\n")
        src.send("migrate -d tcp:127.0.0.1:\(port)\n")
        let report = migrationReport(src, until: ["completed", "failed"])
        XCTAssertTrue(report.hasPrefix("completed"), report + src.stderr + dst.stderr)
        XCTAssertFalse(src.stderr.contains("without TLS"), "no plain-network warning for TLS on loopback: \(src.stderr)")

        let sweepsBefore = dst.stdout.components(separatedBy: "sweep ").count
        XCTAssertTrue(dst.waitFor { $0.components(separatedBy: "sweep ").count >= sweepsBefore + 10 }, dst.stdout)
        XCTAssertFalse(dst.stdout.contains("MISMATCH"), dst.stdout)
        src.send("quit\n"); dst.send("quit\n")
        _ = src.waitForExit(); _ = dst.waitForExit()
    }

    /// A destination that stops reading and then dies while TLS records are queued for it: the
    /// source reports the failure and its guest runs on (OpenSSL writes without MSG_NOSIGNAL,
    /// so the TLS layer ignores SIGPIPE; here the kernel's reset arrives first).
    func testDestinationKilledMidStreamLeavesTheTLSSourceRunning() throws {
        let pki = try TLSTestCredentials(self)
        let port = freeLoopbackPort()
        let dirty = ["-m", "64M", "-kernel", Paths.guest("dirty.elf"), "-append", "base=4M size=32M every=64"]
        let dst = try SwiftKVMProcess(dirty + TLSTestCredentials.x509(pki.good, "server") + ["-incoming", "tcp:127.0.0.1:\(port)"])
        dst.send(tlsOn)
        let src = try SwiftKVMProcess(dirty + TLSTestCredentials.x509(pki.good, "client"))
        XCTAssertTrue(src.waitForOutput("sweep 64"), src.stdout)
        // The destination stops reading (SIGSTOP) while the source streams RAM, so the source's
        // writes wait for room in the socket; then it dies, and the next write meets a closed
        // connection. With 64 MiB and the guest rewriting 32 MiB, passes go on meanwhile.
        src.send(tlsOn + "migrate_set_parameter max-bandwidth 64M\nmigrate -d tcp:127.0.0.1:\(port)\n")
        XCTAssertTrue(src.waitForOutput("migration: pass 1:"), src.stdout + src.stderr)
        XCTAssertEqual(kill(dst.process.processIdentifier, SIGSTOP), 0)
        usleep(1_500_000)
        XCTAssertEqual(kill(dst.process.processIdentifier, SIGKILL), 0)
        XCTAssertNotEqual(dst.waitForExit(), 0)
        let report = migrationReport(src, until: ["failed", "completed"])
        XCTAssertTrue(report.hasPrefix("failed ("), report + src.stderr)
        XCTAssertTrue(src.process.isRunning, "the source process died: \(src.stderr)")
        src.send("info status\n")
        XCTAssertTrue(src.waitForOutput("VM status: running"), src.stdout + src.stderr)
        src.send("quit\n")
        XCTAssertEqual(src.waitForExit(), 0, src.stderr)
    }

    func testPreSharedKeyMigrationCompletes() throws {
        let pki = try TLSTestCredentials(self)
        let outcome = try migrate(destination: TLSTestCredentials.psk(pki.psk, "server"), source: TLSTestCredentials.psk(pki.psk, "client"))
        XCTAssertTrue(outcome.source.stdout.contains("migration: completed"), outcome.source.stdout + outcome.source.stderr)
        XCTAssertTrue(outcome.destination.waitForOutput("tick"), outcome.destination.stdout + outcome.destination.stderr)
        outcome.source.kill(); outcome.destination.kill()
    }

    /// Each mismatch: what the source must say, and what the destination must say.
    func testEveryMismatchIsRefusedOnBothSidesAndTheSourceKeepsRunning() throws {
        let pki = try TLSTestCredentials(self)
        typealias X = TLSTestCredentials
        let cases: [(name: String, destination: [String], destinationSetup: String, source: [String], sourceSetup: String,
                     sourceSays: String, destinationSays: String)] = [
            ("wrong CA", X.x509(pki.good, "server"), tlsOn, X.x509(pki.otherCA, "client"), tlsOn,
             "certificate verify failed", "unknown ca"),
            ("wrong hostname", X.x509(pki.good, "server"), tlsOn, X.x509(pki.good, "client"),
             tlsOn + "migrate_set_parameter tls-hostname dst.example\n", "hostname mismatch", "bad certificate"),
            ("expired certificate", X.x509(pki.expired, "server"), tlsOn, X.x509(pki.good, "client"), tlsOn,
             "certificate has expired", "TLS handshake failed"),
            ("client without certificate", X.x509(pki.good, "server"), tlsOn, X.x509(pki.caOnly, "client"), tlsOn,
             "certificate required", "peer did not return a certificate"),
            ("PSK mismatch", X.psk(pki.psk, "server"), tlsOn, X.psk(pki.otherPSK, "client"), tlsOn,
             "same key for 'qemu'", "the pre-shared keys differ"),
            ("identity not in tls-authz", X.x509(pki.good, "server") + ["-object", "authz-simple,id=auth0,identity=CN=someone-else"],
             tlsOn + "migrate_set_parameter tls-authz auth0\n", X.x509(pki.good, "client"), tlsOn,
             "TLS identity '\(X.clientIdentity)' is not allowed by authz object 'auth0'", "is not allowed by authz object 'auth0'"),
            ("plain source, TLS destination", X.x509(pki.good, "server"), tlsOn, [], "",
             "this destination requires TLS (tls-creds 'tls0')", "this destination requires TLS"),
            ("TLS source, plain destination", [], "", X.x509(pki.good, "client"), tlsOn,
             "the destination does not speak TLS", "the source started TLS, but this destination has no tls-creds"),
        ]
        for check in cases {
            let outcome = try migrate(destination: check.destination, destinationSetup: check.destinationSetup,
                                      source: check.source, sourceSetup: check.sourceSetup)
            let (src, dst) = (outcome.source, outcome.destination)
            // stderr comes on its own pipe and may trail the status line on stdout.
            _ = src.waitForStderr(check.sourceSays, seconds: 10)
            XCTAssertTrue(src.stderr.contains("migration failed") && src.stderr.contains(check.sourceSays),
                          "\(check.name): the source must say '\(check.sourceSays)': \(src.stderr)")
            XCTAssertTrue(src.stdout.contains("VM status: running"), "\(check.name): \(src.stdout)")
            XCTAssertEqual(dst.waitForExit(seconds: 15), 1, "\(check.name): the destination must fail")
            XCTAssertTrue(dst.stderr.contains("incoming migration failed") && dst.stderr.contains(check.destinationSays),
                          "\(check.name): the destination must say '\(check.destinationSays)': \(dst.stderr)")
            XCTAssertFalse(dst.stdout.contains("tick"), "\(check.name): the destination ran the guest: \(dst.stdout)")
            src.kill()
        }
    }

    func testOpenSSLClientCompletesAStandardTLS13HandshakeWithTheDestination() throws {
        let pki = try TLSTestCredentials(self)
        let port = freeLoopbackPort()
        let dst = try SwiftKVMProcess(small + TLSTestCredentials.x509(pki.good, "server") + ["-incoming", "tcp:127.0.0.1:\(port)"])
        dst.send(tlsOn + "info status\n")
        XCTAssertTrue(dst.waitForOutput("VM status: paused (inmigrate)"), dst.stdout + dst.stderr)
        let client = Process()
        client.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        client.arguments = ["openssl", "s_client", "-connect", "127.0.0.1:\(port)", "-tls1_3", "-verify_return_error",
                            "-CAfile", pki.good + "/ca-cert.pem", "-cert", pki.good + "/client-cert.pem",
                            "-key", pki.good + "/client-key.pem", "-verify_hostname", "localhost"]
        let output = Pipe()
        client.standardOutput = output
        client.standardError = output
        // End of input: s_client closes once the handshake is done.
        client.standardInput = FileHandle.nullDevice
        try client.run()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        client.waitUntilExit()
        XCTAssertTrue(text.contains("Verify return code: 0 (ok)"), text)
        XCTAssertTrue(text.contains("TLSv1.3"), text)
        // openssl sent no migration stream: the destination gives up and never runs the guest.
        XCTAssertEqual(dst.waitForExit(seconds: 15), 1, dst.stderr)
        XCTAssertFalse(dst.stdout.contains("tick"), dst.stdout)
    }

    func testBadObjectsAreRefusedAtStartWithWhatIsWrong() throws {
        let pki = try TLSTestCredentials(self)
        let missing = try runSwiftKVM(small + TLSTestCredentials.x509(pki.caOnly, "server"), stdin: "quit\n")
        XCTAssertEqual(missing.status, 1)
        XCTAssertTrue(missing.stderr.contains(pki.caOnly + "/server-cert.pem") && missing.stderr.contains("No such file"), missing.stderr)
        let unknown = try runSwiftKVM(small + ["-object", "tls-creds-x509,id=tls0,dir=\(pki.good),colour=blue"], stdin: "quit\n")
        XCTAssertEqual(unknown.status, 1)
        XCTAssertTrue(unknown.stderr.contains("Property 'tls-creds-x509.colour' not found"), unknown.stderr)
        // A source whose tls-creds names nothing, or server credentials, fails at once and keeps running.
        let wrong = try runSwiftKVM(small + TLSTestCredentials.x509(pki.good, "server"),
                                    stdin: "migrate_set_parameter tls-creds nope\nmigrate tcp:127.0.0.1:1\n" + tlsOn + "migrate tcp:127.0.0.1:1\ninfo status\nquit\n")
        XCTAssertTrue(wrong.stderr.contains("No TLS credentials or authz object with id 'nope'"), wrong.stderr)
        XCTAssertTrue(wrong.stderr.contains("this side needs endpoint=client"), wrong.stderr)
        XCTAssertTrue(wrong.stdout.contains("VM status: running"), wrong.stdout)
        // Postcopy over TLS is refused before anything starts, and the guest runs on.
        let postcopy = try runSwiftKVM(small + TLSTestCredentials.x509(pki.good, "client"),
                                       stdin: "migrate_set_capability postcopy-ram on\n" + tlsOn + "migrate tcp:127.0.0.1:1\ninfo status\nquit\n")
        XCTAssertTrue(postcopy.stderr.contains("postcopy-ram does not work with tls-creds yet"), postcopy.stderr)
        XCTAssertTrue(postcopy.stdout.contains("VM status: running"), postcopy.stdout)
    }

    func testPlainMigrationToAnotherMachineWarns() throws {
        // 0.0.0.0 is not loopback, and connecting to it here is refused at once.
        let result = try runSwiftKVM(small, stdin: "migrate tcp:0.0.0.0:\(freeLoopbackPort())\nquit\n")
        XCTAssertTrue(result.stderr.contains("warning: migrating to tcp:0.0.0.0:") && result.stderr.contains("without TLS"), result.stderr)
        let local = try runSwiftKVM(small, stdin: "migrate tcp:127.0.0.1:\(freeLoopbackPort())\nquit\n")
        XCTAssertFalse(local.stderr.contains("without TLS"), local.stderr)
    }

    /// Starts a destination and a source of the small guest, migrates once and returns both
    /// (the source has printed `info status` after the migration ended).
    private func migrate(destination: [String], destinationSetup: String = "migrate_set_parameter tls-creds tls0\n",
                         source: [String], sourceSetup: String = "migrate_set_parameter tls-creds tls0\n") throws
        -> (source: SwiftKVMProcess, destination: SwiftKVMProcess) {
        let port = freeLoopbackPort()
        let dst = try SwiftKVMProcess(small + destination + ["-incoming", "tcp:127.0.0.1:\(port)"])
        dst.send(destinationSetup + "info status\n")
        XCTAssertTrue(dst.waitForOutput("VM status: paused (inmigrate)"), dst.stdout + dst.stderr)
        let src = try SwiftKVMProcess(small + source)
        XCTAssertTrue(src.waitForOutput("tick 1"), src.stdout)
        src.send(sourceSetup + "migrate tcp:127.0.0.1:\(port)\ninfo status\n")
        XCTAssertTrue(src.waitForOutput("VM status: "), src.stdout + src.stderr)
        return (src, dst)
    }
}
