import Foundation
import Glibc
import XCTest

/// QMP clients, the human monitor and the new console back ends (`-serial pty`,
/// `-serial tcp:...`, `info chardev`) on a real swiftkvm process.
final class QMPConsolesTests: XCTestCase {
    let hello = ["-kernel", Paths.guest("hello.elf")]

    /// A blocking client of a unix or TCP socket, with a line reader.
    final class Client {
        let fd: Int32
        private var buffer: [UInt8] = []

        /// `receiveBufferBytes` shrinks SO_RCVBUF first, for a client that should read slowly.
        init(unix path: String, receiveBufferBytes: Int32? = nil) throws {
            fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
            if var size = receiveBufferBytes {
                _ = setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size))
            }
            var address = sockaddr_un()
            address.sun_family = sa_family_t(AF_UNIX)
            withUnsafeMutableBytes(of: &address.sun_path) { raw in
                let bytes = Array(path.utf8)
                raw.copyBytes(from: bytes)
                raw[bytes.count] = 0
            }
            var connected: Int32 = -1
            for _ in 0..<100 {
                connected = withUnsafePointer(to: &address) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
                }
                if connected == 0 { break }
                usleep(50_000)
            }
            guard connected == 0 else { throw POSIXError(.ECONNREFUSED) }
        }

        init(tcpPort port: UInt16) throws {
            fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            address.sin_port = port.bigEndian
            var connected: Int32 = -1
            for _ in 0..<100 {
                connected = withUnsafePointer(to: &address) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
                }
                if connected == 0 { break }
                usleep(50_000)
            }
            guard connected == 0 else { throw POSIXError(.ECONNREFUSED) }
        }

        init(fd: Int32) { self.fd = fd }

        deinit { close(fd) }

        func send(_ text: String) {
            let bytes = Array(text.utf8)
            _ = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        }

        /// Bytes until `needle` appears (nil after `seconds` or at end of stream).
        func read(until needle: String, seconds: Double = 20) -> String? {
            let deadline = Date().addingTimeInterval(seconds)
            while Date() < deadline {
                let text = String(decoding: buffer, as: UTF8.self)
                if let range = text.range(of: needle) {
                    let taken = String(text[..<range.upperBound])
                    buffer = Array(text[range.upperBound...].utf8)
                    return taken
                }
                var pending = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
                guard poll(&pending, 1, 100) >= 0 else { return nil }
                if pending.revents != 0 {
                    var chunk = [UInt8](repeating: 0, count: 65536)
                    let n = Glibc.read(fd, &chunk, chunk.count)
                    if n <= 0 { return nil }
                    buffer += chunk[0..<n]
                }
            }
            return nil
        }

        /// The next CR LF-terminated QMP message.
        func message() -> String? { read(until: "\r\n") }

        /// Negotiates; returns the greeting.
        func negotiate() -> String? {
            let greeting = message()
            send(#"{"execute": "qmp_capabilities"}"#)
            guard message() == #"{"return": {}}"# + "\r\n" else { return nil }
            return greeting
        }
    }

    func testSeveralQMPClientsAndTheHumanMonitorSeeTheSameStateAndEvents() throws {
        let unixQMP = Paths.temporary(self, "qmp")
        let port = UInt16(freeLoopbackPort())
        let vm = try SwiftKVMProcess(hello + ["-serial", "null", "-qmp", "unix:\(unixQMP),server,nowait",
                                              "-qmp", "tcp:127.0.0.1:\(port),server,nowait"])
        defer { vm.kill() }
        let first = try Client(unix: unixQMP)
        let second = try Client(tcpPort: port)
        let unnegotiated = try Client(unix: unixQMP)
        XCTAssertEqual(first.negotiate()?.hasPrefix(#"{"QMP": {"version": {"qemu": {"major": 7, "minor": 2, "micro": 0}"#), true)
        XCTAssertNotNil(second.negotiate())
        XCTAssertNotNil(unnegotiated.message())

        first.send(#"{"execute": "stop", "id": "a"}"#)
        XCTAssertEqual(first.read(until: #""id": "a"}"# + "\r\n")?.contains(#"{"return": {}, "id": "a"}"#), true)
        XCTAssertNotNil(second.read(until: #""event": "STOP""#), "the other client sees the event")
        second.send(#"{"execute": "query-status"}"#)
        XCTAssertNotNil(second.read(until: #"{"return": {"running": false, "singlestep": false, "status": "paused"}}"#))

        // The human monitor (stdin here) acts on the same machine; QMP clients see its effects.
        vm.send("info status\ncont\n")
        XCTAssertTrue(vm.waitForOutput("VM status: paused"), vm.stdout)
        XCTAssertNotNil(first.read(until: #""event": "RESUME""#))
        XCTAssertNotNil(second.read(until: #""event": "RESUME""#))
        vm.send("system_reset\n")
        XCTAssertNotNil(first.read(until: #""event": "RESET""#))

        // Bad input gets errors on that client only, and it stays usable.
        unnegotiated.send("{\"execute\": \"stop\"}{]}garbage\n")
        XCTAssertNotNil(unnegotiated.read(until: "Expecting capabilities negotiation"))
        XCTAssertNotNil(unnegotiated.read(until: "JSON parse error"))
        XCTAssertNotNil(unnegotiated.read(until: "JSON parse error"))
        unnegotiated.send(#"{"execute": "qmp_capabilities"}"#)
        XCTAssertNotNil(unnegotiated.read(until: #"{"return": {}}"#))
        XCTAssertFalse(unnegotiated.read(until: "\"event\"", seconds: 0.2) != nil, "events sent before negotiation are not replayed")

        // An oversized message: an error, then the server hangs up on that client alone.
        let big = "{\"execute\": \"human-monitor-command\", \"arguments\": {\"command-line\": \"" + String(repeating: "x", count: 2 << 20) + "\"}}"
        let flood = try Client(unix: unixQMP)
        XCTAssertNotNil(flood.negotiate())
        flood.send(big)
        XCTAssertNotNil(flood.read(until: "longer than 1048576 bytes"))
        XCTAssertNil(flood.read(until: "never", seconds: 5), "the connection is closed")

        second.send(#"{"execute": "human-monitor-command", "arguments": {"command-line": "info chardev"}}"#)
        XCTAssertNotNil(second.read(until: #"{"return": "#))
        let chardev = second.read(until: "\r\n") ?? ""
        XCTAssertTrue(chardev.contains(#"serial0: filename=null\ncompat_monitor0: filename=stdio\ncompat_monitor1: filename=unix:\#(unixQMP),server=on\ncompat_monitor2: filename=tcp:127.0.0.1:\#(port),server=on\n"#), chardev)

        first.send(#"{"execute": "quit"}"#)
        XCTAssertNotNil(first.read(until: #"{"return": {}}"#))
        XCTAssertNotNil(second.read(until: #""event": "SHUTDOWN", "data": {"guest": false, "reason": "host-qmp-quit"}"#))
        XCTAssertEqual(vm.waitForExit(seconds: 10), 0, vm.stderr)
    }

    func testAGuestResettingItselfSendsRESET() throws {
        let path = Paths.temporary(self, "qmp")
        let vm = try SwiftKVMProcess(["-kernel", Paths.guest("faults.elf"), "-append", "mode=reset",
                                      "-qmp", "unix:\(path),server,nowait"])
        defer { vm.kill() }
        let client = try Client(unix: path)
        XCTAssertNotNil(client.negotiate())
        let event = client.read(until: #""event": "RESET""#).map { $0 + (client.message() ?? "") }
        XCTAssertNotNil(event)
        XCTAssertEqual(event?.contains(#""guest": true"#), true, event ?? "")
    }

    func testSerialOnAPseudoTerminal() throws {
        let vm = try SwiftKVMProcess(hello + ["-serial", "pty", "-monitor", "stdio"])
        defer { vm.kill() }
        XCTAssertTrue(vm.waitForStderr(" (label serial0)"), vm.stderr)
        guard let line = vm.stderr.split(separator: "\n").first(where: { $0.hasPrefix("char device redirected to /dev/pts/") }),
              let path = line.split(separator: " ").dropFirst(4).first else {
            return XCTFail(vm.stderr)
        }
        XCTAssertEqual(String(line), "char device redirected to \(path) (label serial0)")
        let fd = open(String(path), O_RDWR | O_NOCTTY)
        XCTAssertGreaterThanOrEqual(fd, 0, "open \(path): \(errno)")
        let terminal = Client(fd: fd)
        XCTAssertNotNil(terminal.read(until: "tick 2"), "guest output reaches the pty")
        terminal.send("pty-typed\r")
        XCTAssertNotNil(terminal.read(until: "pty-typed"), "typed bytes reach the guest, which echoes them")
        vm.send("info chardev\n")
        XCTAssertTrue(vm.waitForOutput("serial0: filename=pty:\(path)\ncompat_monitor0: filename=stdio\n"), vm.stdout)
        vm.send("quit\n")
        XCTAssertEqual(vm.waitForExit(), 0)
    }

    func testSerialOnATCPServerWaitsForItsClient() throws {
        let port = UInt16(freeLoopbackPort())
        let vm = try SwiftKVMProcess(hello + ["-serial", "tcp:127.0.0.1:\(port),server", "-monitor", "stdio"])
        defer { vm.kill() }
        XCTAssertTrue(vm.waitForStderr("waiting for connection on serial tcp:127.0.0.1:\(port),server"), vm.stderr)
        let console = try Client(tcpPort: port)
        XCTAssertNotNil(console.read(until: "swiftkvm hello guest"), "the guest started once the client came")
        console.send("over-tcp\r")
        XCTAssertNotNil(console.read(until: "over-tcp"))
        vm.send("info chardev\n")
        XCTAssertTrue(vm.waitForOutput("serial0: filename=tcp:127.0.0.1:\(port),server=on\n"), vm.stdout)
        vm.send("quit\n")
        XCTAssertEqual(vm.waitForExit(), 0)
    }
}
