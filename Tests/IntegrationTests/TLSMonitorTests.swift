import Foundation
import Glibc
import XCTest

/// `-qmp tcp:` and `-monitor tcp:` with `tls-creds=`/`tls-authz=`, QEMU's socket chardev
/// options, against real clients: Python's `ssl` module (standard TLS), a plain TCP client and
/// one that says nothing, with certificates the test makes.
final class TLSMonitorTests: XCTestCase {
    let hello = ["-kernel", Paths.guest("hello.elf"), "-serial", "null"]
    /// Made by each test that needs it.
    var pki: TLSTestCredentials?

    func testQMPOverTLSGreetsOnlyClientsThatFinishTheHandshake() throws {
        let pki = try TLSTestCredentials(self)
        self.pki = pki
        let port = freeLoopbackPort()
        let unixQMP = Paths.temporary(self, "qmp")
        // SIGPIPE as a shell leaves it (this test process ignores it, and children inherit that).
        let defaultSIGPIPE = ["/usr/bin/env", "python3", "-c",
                              "import os, signal, sys; signal.signal(signal.SIGPIPE, signal.SIG_DFL); os.execv(sys.argv[1], sys.argv[1:])"]
        let vm = try SwiftKVMProcess(hello + ["-monitor", "none"] + TLSTestCredentials.x509(pki.good, "server")
                                     + ["-qmp", "tcp:127.0.0.1:\(port),server=on,wait=off,tls-creds=tls0",
                                        "-qmp", "unix:\(unixQMP),server,nowait"], launcher: defaultSIGPIPE)
        defer { vm.kill() }
        let local = try QMPConsolesTests.Client(unix: unixQMP)
        XCTAssertNotNil(local.negotiate())

        // Clients that connect and say nothing hold handshakes, up to the client limit; everyone
        // else is served meanwhile, and they are dropped after a few seconds. Until then a
        // further client waits in the listen backlog.
        let silentSince = Date()
        let silent = try (0..<8).map { _ in try QMPConsolesTests.Client(tcpPort: UInt16(port)) }
        local.send(#"{"execute": "query-status"}"#)
        XCTAssertNotNil(local.read(until: #""status": "running""#), "the unix client is served while TLS clients are silent")
        let good = try tlsClient(port: port, certificates: pki.good, steps: [
            #"<"QMP""#, #">{"execute": "qmp_capabilities"}"#, #"<"return""#, #">{"execute": "query-status"}"#, #"<"status""#])
        XCTAssertEqual(good.status, 0, good.stdout + good.stderr + vm.stderr)
        XCTAssertTrue(good.stderr.contains("negotiated TLSv1.3"), good.stderr)
        XCTAssertGreaterThan(Date().timeIntervalSince(silentSince), 4.5, "served only once the silent clients' 5 s ran out")
        XCTAssertTrue(good.stdout.hasPrefix(#"{"QMP": {"version": {"qemu": {"major": 7"#), good.stdout)
        XCTAssertTrue(good.stdout.contains(#"{"return": {"running": true, "singlestep": false, "status": "running"}}"#), good.stdout)
        // Pipelined commands (90 KB, several TLS records) whose replies (1.3 MB), unread for a
        // second, back the server up past its bound (256 KiB): it stops reading, and resumes on
        // the records OpenSSL already took from the socket, which poll(2) does not see.
        let pipelined = (0..<2000).map { #"{"execute": "query-commands", "id": \#($0)}"# }.joined(separator: "\n")
        let bulk = try tlsClient(port: port, certificates: pki.good, steps: [
            #"<"QMP""#, #">{"execute": "qmp_capabilities"}"#, #"<"return""#, ">" + pipelined, "~1", #"<"id": 1999}"#])
        XCTAssertEqual(bulk.status, 0, bulk.stderr + vm.stderr)
        XCTAssertEqual(bulk.stdout.components(separatedBy: #""name": "query-status""#).count - 1, 2000)
        // Clients that leave without reading their replies: the process carries on (OpenSSL's
        // writes to a socket its peer closed raise SIGPIPE).
        for _ in 0..<3 {
            let leaver = try tlsClient(port: port, certificates: pki.good, steps: [#"<"QMP""#, #">{"execute": "qmp_capabilities"}"#, ">" + pipelined])
            XCTAssertEqual(leaver.status, 0, leaver.stderr)
        }
        local.send(#"{"execute": "query-status"}"#)
        XCTAssertNotNil(local.read(until: #""status": "running""#), "still serving after a TLS client left mid-reply: " + vm.stderr)
        for client in silent {
            let saw = Self.readUntilClosed(client.fd, seconds: 10)
            XCTAssertTrue(saw.closed && saw.text.isEmpty, "a silent client is dropped, without a greeting")
        }
        let timedOut = { vm.stderr.components(separatedBy: "the TLS handshake did not finish within 5 s").count - 1 }
        for _ in 0..<100 where timedOut() < 8 { usleep(50_000) }
        XCTAssertEqual(timedOut(), 8, vm.stderr)

        // Plain QMP to the TLS port: no greeting, disconnected.
        let plain = try QMPConsolesTests.Client(tcpPort: UInt16(port))
        plain.send(#"{"execute": "qmp_capabilities"}"# + "\n")
        let plainSaw = Self.readUntilClosed(plain.fd, seconds: 10)
        XCTAssertTrue(plainSaw.closed, "a plain client is disconnected")
        XCTAssertFalse(plainSaw.text.contains("QMP"), plainSaw.text)
        XCTAssertTrue(vm.waitForStderr("(the client does not speak TLS)"), vm.stderr)

        // A certificate from another CA: refused, no greeting.
        let stranger = try tlsClient(port: port, certificates: pki.otherCA, steps: [#"<"QMP""#])
        XCTAssertEqual(stranger.status, 3, stranger.stdout + stranger.stderr)
        XCTAssertFalse(stranger.stdout.contains("QMP"), stranger.stdout)
        XCTAssertTrue(stranger.stderr.lowercased().contains("unknown ca"), stranger.stderr)
        XCTAssertTrue(vm.waitForStderr("refused a client: TLS handshake failed: certificate verify failed"), vm.stderr)

        local.send(#"{"execute": "query-status"}"#)
        XCTAssertNotNil(local.read(until: #""status": "running""#), vm.stderr)
    }

    func testTLSAuthzLetsInOnlyItsIdentityAndTheMonitorAnswersOverTLS() throws {
        let pki = try TLSTestCredentials(self)
        self.pki = pki
        let qmpPort = freeLoopbackPort()
        let monitorPort = freeLoopbackPort()
        let identity = TLSTestCredentials.clientIdentity.replacingOccurrences(of: ",", with: ",,")
        let vm = try SwiftKVMProcess(hello + TLSTestCredentials.x509(pki.good, "server")
                                     + ["-object", "authz-simple,id=auth0,identity=\(identity)",
                                        "-object", "authz-simple,id=nobody,identity=CN=someone.else",
                                        "-qmp", "tcp:127.0.0.1:\(qmpPort),server,nowait,tls-creds=tls0,tls-authz=nobody",
                                        "-monitor", "tcp:127.0.0.1:\(monitorPort),server,tls-creds=tls0,tls-authz=auth0"])
        defer { vm.kill() }
        // Without nowait the guest waits for the first client that gets through TLS.
        XCTAssertTrue(vm.waitForStderr("waiting for connection on monitor tcp:127.0.0.1:\(monitorPort),server"), vm.stderr)
        let plain = try QMPConsolesTests.Client(tcpPort: UInt16(monitorPort))
        plain.send("info status\n")
        let plainSaw = Self.readUntilClosed(plain.fd, seconds: 10)
        XCTAssertTrue(plainSaw.closed && !plainSaw.text.contains("monitor"), plainSaw.text)

        let monitor = try tlsClient(port: monitorPort, certificates: pki.good,
                                    steps: ["<(monitor) ", ">info status", "<VM status: running", "<(monitor) ", ">info chardev", "<(monitor) "])
        XCTAssertEqual(monitor.status, 0, monitor.stdout + monitor.stderr + vm.stderr)
        XCTAssertTrue(monitor.stdout.hasPrefix("swiftkvm monitor - type 'help' for more information\n"), monitor.stdout)
        XCTAssertTrue(monitor.stdout.contains("compat_monitor0: filename=tcp:127.0.0.1:\(monitorPort),server=on"), monitor.stdout)

        let refused = try tlsClient(port: qmpPort, certificates: pki.good, steps: [#"<"QMP""#])
        XCTAssertEqual(refused.status, 3, refused.stdout + refused.stderr)
        XCTAssertFalse(refused.stdout.contains("QMP"), refused.stdout)
        XCTAssertTrue(vm.waitForStderr("refused a client: TLS identity '\(TLSTestCredentials.clientIdentity)' is not allowed by authz object 'nobody'"),
                      vm.stderr)
        XCTAssertFalse(vm.stderr.contains("without TLS"), vm.stderr)
    }

    func testBadTLSOptionsStopTheStartWithTheReason() throws {
        let pki = try TLSTestCredentials(self)
        self.pki = pki
        let cases: [(arguments: [String], message: String)] = [
            (["-qmp", "tcp:127.0.0.1:0,server,nowait,tls-creds=nope"], "swiftkvm: -qmp: tls-creds=nope: No TLS credentials with id 'nope'"),
            (["-monitor", "tcp:127.0.0.1:0,server,nowait,tls-creds=nope"], "swiftkvm: -monitor: tls-creds=nope: No TLS credentials with id 'nope'"),
            (["-object", "authz-simple,id=auth0,identity=x", "-qmp", "tcp:127.0.0.1:0,server,nowait,tls-creds=auth0"],
             "tls-creds=auth0: Object with id 'auth0' is not TLS credentials"),
            (["-qmp", "tcp:127.0.0.1:0,server,nowait,tls-creds=tls0,tls-authz=nope"], "swiftkvm: -qmp: tls-authz=nope: No authz-simple object with id 'nope'"),
            (["-monitor", "tcp:127.0.0.1:0,server,nowait,tls-creds=tls0,tls-authz=tls0"],
             "swiftkvm: -monitor: tls-authz=tls0: Object with id 'tls0' is not an authz-simple object"),
            (["-qmp", "unix:/tmp/never,server,nowait,tls-creds=tls0"], "TLS can only be used over TCP socket"),
        ]
        for (arguments, message) in cases {
            let result = try runSwiftKVM(hello + ["-monitor", "none"] + TLSTestCredentials.x509(pki.good, "server") + arguments)
            XCTAssertEqual(result.status, 1, arguments.joined(separator: " "))
            XCTAssertTrue(result.stderr.contains(message), result.stderr)
        }
        // Client credentials on a listening socket; the monitor beyond loopback without TLS is
        // warned about, the TLS one is not.
        let wrongEndpoint = try runSwiftKVM(hello + TLSTestCredentials.x509(pki.good, "client")
                                            + ["-monitor", "tcp:0.0.0.0:0,server,nowait",
                                               "-qmp", "tcp:0.0.0.0:0,server,nowait,tls-creds=tls0"])
        XCTAssertEqual(wrongEndpoint.status, 1)
        XCTAssertTrue(wrongEndpoint.stderr.contains("swiftkvm: -qmp: tls-creds=tls0: Expected TLS credentials for a server endpoint"), wrongEndpoint.stderr)
        XCTAssertTrue(wrongEndpoint.stderr.contains("warning: -monitor tcp:0.0.0.0:0 listens beyond this machine without TLS"), wrongEndpoint.stderr)
        XCTAssertFalse(wrongEndpoint.stderr.contains("warning: -qmp"), wrongEndpoint.stderr)
    }

    /// Runs Python's `ssl` client on `port` trusting the good CA of `pki`, with the client certificate
    /// of `certificates` (nil: none). Each step waits for `<TEXT` or sends the line `>LINE`.
    /// Status 0 when every step passed, 3 when the connection failed or closed first.
    func tlsClient(port: Int, certificates: String?, steps: [String]) throws -> (status: Int32, stdout: String, stderr: String) {
        guard let pki else { throw POSIXError(.ENOENT) }
        let script = Paths.temporary(self, "client.py")
        try Self.pythonClient.write(toFile: script, atomically: true, encoding: .utf8)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        let ca = pki.good + "/ca-cert.pem"
        process.arguments = ["python3", script, String(port), ca, certificates ?? "-"] + steps
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let stdout = out.fileHandleForReading.readDataToEndOfFile()
        let stderr = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: stdout, as: UTF8.self), String(decoding: stderr, as: UTF8.self))
    }

    static let pythonClient = """
        import socket, ssl, sys, time
        port, cafile, certdir = int(sys.argv[1]), sys.argv[2], sys.argv[3]
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.load_verify_locations(cafile)
        if certdir != "-":
            context.load_cert_chain(certdir + "/client-cert.pem", certdir + "/client-key.pem")
        received = b""
        try:
            for attempt in range(100):
                try:
                    # A small receive buffer: replies the client does not read back up the server.
                    raw = socket.socket()
                    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8192)
                    raw.settimeout(10)
                    raw.connect(("127.0.0.1", port))
                    break
                except ConnectionRefusedError:
                    time.sleep(0.05)
            tls = context.wrap_socket(raw, server_hostname="localhost")
            print("negotiated", tls.version(), file=sys.stderr, flush=True)
            seen = 0
            for step in sys.argv[4:]:
                if step.startswith("~"):
                    time.sleep(float(step[1:]))
                    continue
                if step.startswith(">"):
                    tls.sendall(step[1:].encode() + b"\\n")
                    continue
                needle = step[1:].encode()
                found = received.find(needle, seen)
                while found < 0:
                    chunk = tls.recv(65536)
                    if not chunk:
                        raise EOFError("the server closed the connection")
                    start = max(seen, len(received) - len(needle))
                    received += chunk
                    found = received.find(needle, start)
                seen = found + len(needle)
            sys.stdout.write(received.decode(errors="replace"))
        except Exception as error:
            sys.stdout.write(received.decode(errors="replace"))
            print("failed:", type(error).__name__, error, file=sys.stderr)
            sys.exit(3)
        """

    /// Everything a peer sends until it closes (or `seconds` pass).
    static func readUntilClosed(_ fd: Int32, seconds: Double) -> (text: String, closed: Bool) {
        var bytes: [UInt8] = []
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            var pending = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&pending, 1, 100) >= 0 else { break }
            guard pending.revents != 0 else { continue }
            var chunk = [UInt8](repeating: 0, count: 4096)
            let n = Glibc.read(fd, &chunk, chunk.count)
            if n <= 0 { return (String(decoding: bytes, as: UTF8.self), true) }
            bytes += chunk[0..<n]
        }
        return (String(decoding: bytes, as: UTF8.self), false)
    }
}
