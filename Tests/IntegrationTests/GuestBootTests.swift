import Foundation
import Glibc
import XCTest

/// Booting each kind of guest through the real binary, and the guest's console on a socket.
final class GuestBootTests: XCTestCase {
    func testDebugExitStatusCodes() throws {
        for code in [0, 1, 7, 100] {
            let r = try runSwiftKVM(["-kernel", Paths.guest("faults.elf"), "-append", "mode=exit code=\(code)",
                                     "-device", "isa-debug-exit,iobase=0xf4,iosize=0x04", "-monitor", "none"])
            XCTAssertEqual(r.status, Int32(((code << 1) | 1) & 0xff), "code \(code): \(r.stderr)")
        }
    }

    func testBootSectorThroughDrive() throws {
        let p = try SwiftKVMProcess(["-drive", "file=\(Paths.guest("bootsector.img")),format=raw"])
        XCTAssertTrue(p.waitForOutput("swiftkvm boot sector: real mode, DL=0x80"), p.stdout + p.stderr)
        p.send("quit\n")
        XCTAssertEqual(p.waitForExit(), 0)
    }

    func testDefaultGuestBootsWithNoArguments() throws {
        let p = try SwiftKVMProcess([])
        XCTAssertTrue(p.waitForOutput("swiftkvm hello guest: 128 MiB RAM"), p.stdout + p.stderr)
        p.send("quit\n")
        XCTAssertEqual(p.waitForExit(), 0)
    }

    func testConsoleOverUnixSocketEchoesTypedInput() throws {
        let socketPath = Paths.temporary(self, "console.sock")
        let p = try SwiftKVMProcess(["-kernel", Paths.guest("hello.elf"), "-serial", "unix:\(socketPath),server,nowait"])
        let client = try UnixClient(path: socketPath, seconds: 20)
        XCTAssertTrue(client.waitFor("tick"), client.text)
        client.send("typed-into-socket")
        XCTAssertTrue(client.waitFor("typed-into-socket"), client.text)
        XCTAssertFalse(p.stdout.contains("typed-into-socket"), "guest output goes to the socket, not stdout")
        p.send("quit\n")
        XCTAssertEqual(p.waitForExit(), 0)
    }

    func testSerialToFile() throws {
        let path = Paths.temporary(self, "serial.log")
        let p = try SwiftKVMProcess(["-kernel", Paths.guest("hello.elf"), "-serial", "file:\(path)"])
        let deadline = Date().addingTimeInterval(30)
        var text = ""
        while Date() < deadline && !text.contains("tick 1") {
            usleep(50_000)
            text = (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
        }
        XCTAssertTrue(text.contains("swiftkvm hello guest"), text)
        p.send("quit\n")
        XCTAssertEqual(p.waitForExit(), 0)
    }
}

/// A unix-socket client that collects what it reads.
final class UnixClient {
    let fd: Int32
    private(set) var text = ""

    init(path: String, seconds: Double) throws {
        fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &addr.sun_path) { buf in
            for (i, b) in path.utf8.prefix(buf.count - 1).enumerated() { buf[i] = b }
        }
        let deadline = Date().addingTimeInterval(seconds)
        while true {
            let r = withUnsafePointer(to: &addr) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
            }
            if r == 0 { break }
            if Date() > deadline { close(fd); throw POSIXError(.ECONNREFUSED) }
            usleep(50_000)
        }
    }

    deinit { close(fd) }

    func send(_ s: String) { _ = s.utf8CString.withUnsafeBufferPointer { write(fd, $0.baseAddress, $0.count - 1) } }

    @discardableResult
    func waitFor(_ needle: String, seconds: Double = 30) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while !text.contains(needle) {
            if Date() > deadline { return false }
            var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&p, 1, 100) > 0 else { continue }
            var buf = [UInt8](repeating: 0, count: 4096)
            let n = read(fd, &buf, buf.count)
            if n <= 0 { return text.contains(needle) }
            text += String(decoding: buf[0..<n], as: UTF8.self)
        }
        return true
    }
}
