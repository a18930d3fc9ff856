import Foundation
import Glibc
import XCTest

/// Nothing the guest wrote before it exits through isa-debug-exit may be lost, on any
/// console back end. A boot sector prints `dots` dots and `BOOT OK\n`, then exits at once;
/// many copies run in parallel, so the machine is loaded as it is when tests race.
final class GuestOutputAtExitTests: XCTestCase {
    static let dots = 2000
    static let runs = 40

    /// Real mode: fill memory with dots, `rep outsb` them and the message to COM1 (KVM hands
    /// string I/O over in page-sized bursts, so the last bytes reach the console pipe just
    /// before the exit), then write 0x10 to port 0xf4 (exit status 0x21). Assembled with GNU as.
    static func bootSector(dots: Int) -> [UInt8] {
        let count = [UInt8(dots & 0xff), UInt8(dots >> 8)]
        var code: [UInt8] = [0xfa, 0xfc, 0x31, 0xc0, 0x8e, 0xd8, 0x8e, 0xc0]  // cli; cld; ds = es = 0
        code += [0xbf, 0x00, 0x80, 0xb9] + count + [0xb0, 0x2e, 0xf3, 0xaa]   // di=0x8000; cx=dots; al='.'; rep stosb
        code += [0xbe, 0x00, 0x80, 0xb9] + count + [0xba, 0xf8, 0x03, 0xf3, 0x6e]  // si=0x8000; cx=dots; dx=0x3f8; rep outsb
        code += [0xbe, 0x2e, 0x7c, 0xb9, 0x08, 0x00, 0xf3, 0x6e]             // si=msg (0x7c2e); cx=8; rep outsb
        code += [0xba, 0xf4, 0x00, 0xb0, 0x10, 0xee, 0xf4, 0xeb, 0xfd]       // dx=0xf4; al=0x10; out; hlt; jmp $-1
        code += Array("BOOT OK\n".utf8)
        var sector = code + [UInt8](repeating: 0, count: 510 - code.count)
        sector += [0x55, 0xAA]
        return sector
    }

    static let expected = String(repeating: ".", count: dots) + "BOOT OK\n"
    static let exitStatus: Int32 = 0x21

    /// Linux's F_SETPIPE_SZ (not exported by Glibc's Swift module).
    static let setPipeSize: Int32 = 1031

    private func image(dots: Int) throws -> String {
        let path = Paths.temporary(self, "exit-boot-\(dots).img")
        try Data(Self.bootSector(dots: dots)).write(to: URL(fileURLWithPath: path))
        return path
    }

    /// Spins `threads` threads until `body` returns: a loaded machine is when a poll loop
    /// is descheduled between reading the console and seeing the exit request.
    /// Starts the processes and waits for all of them.
    private func runAll(_ start: () throws -> [SwiftKVMProcess]) rethrows -> [SwiftKVMProcess] {
        let processes = try start()
        for p in processes { _ = p.waitForExit(seconds: 120) }
        return processes
    }

    private func launch(_ image: String, _ extra: [String]) throws -> SwiftKVMProcess {
        try SwiftKVMProcess(["-m", "2M", "-drive", "file=\(image),format=raw", "-device", "isa-debug-exit",
                             "-monitor", "none"] + extra)
    }

    /// 40 runs at once, half to `-serial file:`, half to `-serial stdio`.
    func testFileAndStdioBackEndsKeepEveryByteInParallelRuns() throws {
        let image = try image(dots: Self.dots)
        let paths = (0..<(Self.runs / 2)).map { Paths.temporary(self, "exit-\($0).out") }
        let processes = try runAll {
            try paths.map { try launch(image, ["-serial", "file:\($0)"]) }
                + (0..<(Self.runs / 2)).map { _ in try launch(image, ["-serial", "stdio"]) }
        }
        for (index, p) in processes.enumerated() {
            XCTAssertEqual(p.waitForExit(seconds: 120), Self.exitStatus, "run \(index): \(p.stderr)")
            let written = index < paths.count
                ? String(decoding: (try? Data(contentsOf: URL(fileURLWithPath: paths[index]))) ?? Data(), as: UTF8.self)
                : p.stdout
            XCTAssertEqual(written.count, Self.expected.count, "run \(index) lost \(Self.expected.count - written.count) bytes")
            XCTAssertEqual(written, Self.expected, "run \(index)")
        }
    }

    /// Stdout into a pipe of one page that the reader leaves alone while the guest prints
    /// 20000 bytes and exits: the loop must neither block on it nor lose what is queued.
    func testStdoutThatStallsUntilAfterTheExitGetsEverything() throws {
        let dots = 20000
        let image = try image(dots: dots)
        let output = Pipe()
        _ = fcntl(output.fileHandleForWriting.fileDescriptor, Self.setPipeSize, 4096)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Paths.binary)
        process.arguments = ["-m", "2M", "-drive", "file=\(image),format=raw", "-device", "isa-debug-exit",
                             "-monitor", "none", "-serial", "stdio"]
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = output
        try process.run()
        try? output.fileHandleForWriting.close()
        // Nobody reads while the guest prints (about half a second here) and exits.
        usleep(1_500_000)
        let received = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        XCTAssertEqual(process.terminationStatus, Self.exitStatus)
        let expected = String(repeating: ".", count: dots) + "BOOT OK\n"
        XCTAssertEqual(received.count, expected.utf8.count, "lost \(expected.utf8.count - received.count) bytes")
        XCTAssertEqual(String(decoding: received, as: UTF8.self), expected)
    }

    /// A unix-socket console client that reads slowly (a small receive buffer, and nothing
    /// read until after the exit) still gets every byte.
    func testSocketClientThatReadsLateGetsEverything() throws {
        let image = try image(dots: Self.dots)
        let path = Paths.temporary(self, "exit-serial.sock")
        let p = try launch(image, ["-serial", "unix:\(path),server"])
        defer { p.kill() }
        let client = try QMPConsolesTests.Client(unix: path, receiveBufferBytes: 1024)
        usleep(1_000_000)
        XCTAssertEqual(client.read(until: "BOOT OK\n"), Self.expected)
        XCTAssertEqual(p.waitForExit(seconds: 30), Self.exitStatus, p.stderr)
    }

    /// A pty whose reader keeps reading gets everything, though closing the master discards
    /// what the slave has not read.
    func testPtyReaderGetsEverything() throws {
        let image = try image(dots: Self.dots)
        // -S: the guest starts only once the reader is attached (`cont` on the monitor).
        let p = try SwiftKVMProcess(["-m", "2M", "-drive", "file=\(image),format=raw", "-device", "isa-debug-exit",
                                     "-serial", "pty", "-S"])
        defer { p.kill() }
        XCTAssertTrue(p.waitForStderr("(label serial0)"), p.stderr)
        let line = p.stderr.components(separatedBy: "\n").first { $0.contains("char device redirected to") } ?? ""
        let slave = line.replacingOccurrences(of: "char device redirected to ", with: "")
            .replacingOccurrences(of: " (label serial0)", with: "")
        let fd = open(slave, O_RDONLY | O_NOCTTY)
        XCTAssertGreaterThanOrEqual(fd, 0, slave)
        let client = QMPConsolesTests.Client(fd: fd)
        p.send("cont\n")
        XCTAssertEqual(client.read(until: "BOOT OK\n"), Self.expected)
        XCTAssertEqual(p.waitForExit(seconds: 30), Self.exitStatus, p.stderr)
    }
}
