import XCTest
import Monitor
@testable import swiftkvm

final class EndpointOptionTests: XCTestCase {
    func testSerialForms() throws {
        let cases: [(String, Configuration.SerialBackend)] = [
            ("stdio", .stdio), ("null", .null), ("none", .null), ("pty", .pty),
            ("file:/tmp/out.txt", .file(path: "/tmp/out.txt")),
            ("unix:/tmp/s.sock", .unixSocket(path: "/tmp/s.sock", server: false, wait: true)),
            ("unix:/tmp/s.sock,server", .unixSocket(path: "/tmp/s.sock", server: true, wait: true)),
            ("unix:/tmp/s.sock,server,nowait", .unixSocket(path: "/tmp/s.sock", server: true, wait: false)),
            ("unix:/tmp/s.sock,server=on,wait=off", .unixSocket(path: "/tmp/s.sock", server: true, wait: false)),
            ("tcp:127.0.0.1:4444,server,nowait", .tcp(host: "127.0.0.1", port: 4444, server: true, wait: false)),
            ("tcp::4444,server", .tcp(host: "", port: 4444, server: true, wait: true)),
            ("tcp:[::1]:4444", .tcp(host: "::1", port: 4444, server: false, wait: true)),
        ]
        for (text, expected) in cases {
            XCTAssertEqual(try parse("-serial", text).serial, expected, text)
        }
        XCTAssertEqual(try parse("-serial", "null", "-serial", "stdio").serial, .stdio, "last one wins")
    }

    func testSerialErrors() {
        XCTAssertOptionMessage(["-serial", "vc"], contains: "-serial: invalid value 'vc' (use stdio, null")
        XCTAssertOptionMessage(["-serial", "file:"], contains: "-serial: invalid value 'file:'")
        XCTAssertOptionMessage(["-serial", "unix:"], contains: "-serial: invalid value 'unix:'")
        XCTAssertOptionMessage(["-serial", "unix:/x,server,telnet"], contains: "unknown property 'telnet'")
        XCTAssertOptionMessage(["-serial", "unix:/x,server=maybe"], contains: "use on or off")
        XCTAssertOptionMessage(["-serial", "tcp:localhost"], contains: "HOST:PORT")
        XCTAssertOptionMessage(["-serial", "tcp:localhost:99999"], contains: "0 to 65535")
        XCTAssertOptionMessage(["-serial", "tcp:localhost:+1"], contains: "0 to 65535")
        XCTAssertOptionMessage(["-serial", "tcp:::1:80"], contains: "brackets")
        XCTAssertOptionMessage(["-serial", ""], contains: "-serial: invalid value ''")
        XCTAssertOptionError(["-serial"], .missingArgument(option: "-serial"))
    }

    func testMonitor() throws {
        XCTAssertEqual(try parse("-monitor", "stdio").monitor, .stdio)
        XCTAssertEqual(try parse("-monitor", "none").monitor, Configuration.MonitorEndpoint.none)
        XCTAssertEqual(try parse("-monitor", "unix:/tmp/m.sock,server,nowait").monitor,
                       .unixSocket(path: "/tmp/m.sock", server: true, wait: false))
        XCTAssertEqual(try parse("-monitor", "tcp:127.0.0.1:5555,server,nowait").monitor,
                       .tcp(host: "127.0.0.1", port: 5555, server: true, wait: false))
        XCTAssertOptionMessage(["-monitor", "tcp:127.0.0.1:5555"], contains: "only listening sockets are supported; add ,server")
        XCTAssertOptionMessage(["-monitor", "vc"], contains: "use stdio, none, unix:PATH[,server][,nowait] or tcp:HOST:PORT,server")
        XCTAssertOptionMessage(["-monitor", "unix:/m,nodelay"], contains: "unknown property 'nodelay'")
    }

    func testQMPAndMonitorTakeQEMUsTLSOptions() throws {
        let tls = SocketTLSOptions(credentials: "tls0", authorization: "auth0")
        XCTAssertEqual(try parse("-qmp", "tcp:127.0.0.1:4444,server=on,wait=off,tls-creds=tls0,tls-authz=auth0").qmp,
                       [.tcp(host: "127.0.0.1", port: 4444, server: true, wait: false, tls: tls)])
        XCTAssertEqual(try parse("-qmp", "tcp::4444,server,nowait,tls-creds=tls0").qmp,
                       [.tcp(host: "", port: 4444, server: true, wait: false, tls: SocketTLSOptions(credentials: "tls0"))])
        XCTAssertEqual(try parse("-qmp", "tcp:localhost:4444,server,nowait").qmp,
                       [.tcp(host: "localhost", port: 4444, server: true, wait: false)], "no TLS without tls-creds")
        XCTAssertEqual(try parse("-monitor", "tcp:127.0.0.1:5555,server,tls-creds=tls0").monitor,
                       .tcp(host: "127.0.0.1", port: 5555, server: true, wait: true, tls: SocketTLSOptions(credentials: "tls0")))
        XCTAssertEqual(try parse("-qmp", "tcp:127.0.0.1:4444,server,nowait,tls-creds=tls0").qmpSpecs,
                       [.tcp(host: "127.0.0.1", port: 4444, wait: false, tls: SocketTLSOptions(credentials: "tls0"))])
        XCTAssertEqual(try parse("-monitor", "tcp:127.0.0.1:5555,server,nowait,tls-creds=tls0").monitorSpec,
                       .tcpServer(host: "127.0.0.1", port: 5555, wait: false, tls: SocketTLSOptions(credentials: "tls0")))

        for option in ["-qmp", "-monitor"] {
            XCTAssertOptionMessage([option, "unix:/q,server,nowait,tls-creds=tls0"], contains: "\(option): invalid value 'unix:/q,server,nowait,tls-creds=tls0' (TLS can only be used over TCP socket)")
            XCTAssertOptionMessage([option, "tcp:127.0.0.1:4444,server,tls-authz=auth0"], contains: "tls-authz requires tls-creds")
            XCTAssertOptionMessage([option, "tcp:127.0.0.1:4444,server,tls-creds="], contains: "\(option): invalid value 'tls-creds=' (give the id of an -object)")
            XCTAssertOptionMessage([option, "tcp:127.0.0.1:4444,server,tls-hostname=x"], contains: "unknown property 'tls-hostname' (supported: server, nowait, wait, tls-creds, tls-authz)")
        }
        XCTAssertOptionMessage(["-serial", "tcp:127.0.0.1:4444,server,tls-creds=tls0"], contains: "-serial: unknown property 'tls-creds' (supported: server, nowait, wait)")
    }

    func testPlainQMPAndMonitorBeyondLoopbackAreWarnedAbout() throws {
        let warned = try parse("-qmp", "tcp:0.0.0.0:4444,server,nowait", "-qmp", "tcp:127.0.0.1:4445,server,nowait",
                               "-qmp", "tcp:192.0.2.1:4446,server,nowait,tls-creds=tls0", "-monitor", "tcp::5555,server,nowait")
        XCTAssertEqual(warned.plainNetworkWarnings.count, 2, "\(warned.plainNetworkWarnings)")
        XCTAssertTrue(warned.plainNetworkWarnings[0].hasPrefix("-monitor tcp::5555 listens beyond this machine without TLS: anyone who can reach it controls swiftkvm"),
                      warned.plainNetworkWarnings[0])
        XCTAssertTrue(warned.plainNetworkWarnings[1].hasPrefix("-qmp tcp:0.0.0.0:4444 listens beyond this machine without TLS"), warned.plainNetworkWarnings[1])
        XCTAssertEqual(try parse("-monitor", "tcp:[::1]:5555,server,nowait").plainNetworkWarnings, [])
        XCTAssertEqual(try parse("-monitor", "tcp:0.0.0.0:5555,server,nowait,tls-creds=tls0").plainNetworkWarnings, [])
    }

    func testIncoming() throws {
        var config = try parse("-incoming", "tcp:0.0.0.0:4444")
        XCTAssertEqual(config.incoming, .tcp(host: "0.0.0.0", port: 4444))
        XCTAssertEqual(config.incomingURI, "tcp:0.0.0.0:4444")
        config = try parse("-incoming", "unix:/tmp/mig.sock")
        XCTAssertEqual(config.incoming, .unixSocket(path: "/tmp/mig.sock"))
        config = try parse("-incoming", "defer")
        XCTAssertEqual(config.incoming, .deferred)
        XCTAssertEqual(config.incomingURI, "defer")
        XCTAssertEqual(try parse("-incoming", "tcp:localhost:0").incoming, .tcp(host: "localhost", port: 0))
        XCTAssertEqual(try parse("-incoming", "exec:cat stream").incoming, .exec(command: "cat stream"))
        XCTAssertEqual(try parse("-incoming", "stdio").incoming, .stdio)
        XCTAssertEqual(try parse("-incoming", "file:/srv/vm.snap").incoming, .file(path: "/srv/vm.snap"))
        XCTAssertEqual(try parse("-incoming", "file:/srv/vm.snap").incomingURI, "file:/srv/vm.snap")
        XCTAssertOptionMessage(["-incoming", "exec:"], contains: "use tcp:HOST:PORT, unix:PATH, file:PATH, exec:COMMAND, stdio or defer")
        XCTAssertOptionMessage(["-incoming", "file:"], contains: "-incoming: invalid value 'file:'")
        XCTAssertOptionMessage(["-incoming", "tcp:host"], contains: "HOST:PORT")
        XCTAssertOptionMessage(["-incoming", "unix:"], contains: "-incoming: invalid value 'unix:'")
    }
}
