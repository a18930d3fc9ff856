import Foundation
import Glibc
import XCTest

/// The poll loop that serves QMP, the monitors and the guest console must never wait on one
/// slow consumer: a memory save into a FIFO nobody reads yet, or a stdout nobody drains.
final class MainLoopTests: XCTestCase {
    func testQMPKeepsAnsweringWhileAPmemsaveWaitsForItsFile() throws {
        let fifo = Paths.temporary(self, "pmemsave.fifo")
        XCTAssertEqual(mkfifo(fifo, 0o600), 0)
        let qmpPath = Paths.temporary(self, "pmemsave.qmp")
        let p = try SwiftKVMProcess(["-m", "64M", "-kernel", Paths.guest("hello.elf"), "-serial", "null",
                                     "-monitor", "none", "-qmp", "unix:\(qmpPath),server,nowait"])
        defer { p.kill() }
        let qmp = try QMPConsolesTests.Client(unix: qmpPath)
        XCTAssertNotNil(qmp.negotiate())
        // Nobody reads the FIFO yet, so the save cannot even open it.
        qmp.send(#"{"execute": "human-monitor-command", "arguments": {"command-line": "pmemsave 0 32M \#(fifo)"}}"#)
        XCTAssertEqual(qmp.message(), #"{"return": ""}"# + "\r\n")
        qmp.send(#"{"execute": "query-status"}"#)
        XCTAssertEqual(qmp.message(), #"{"return": {"running": true, "singlestep": false, "status": "running"}}"# + "\r\n",
                       "QMP stopped answering while the save waited")
        qmp.send(#"{"execute": "human-monitor-command", "arguments": {"command-line": "pmemsave 0 4K /tmp/x"}}"#)
        XCTAssertEqual(qmp.message(), #"{"return": "a memory save is already in progress; try again when it has finished\n"}"# + "\r\n")
        // Now read it: the whole range arrives.
        let fd = open(fifo, O_RDONLY)
        XCTAssertGreaterThanOrEqual(fd, 0)
        var total = 0
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n = read(fd, &chunk, chunk.count)
            if n <= 0 { break }
            total += n
        }
        close(fd)
        XCTAssertEqual(total, 32 << 20)
    }

    /// `-serial stdio` into a one-page pipe nobody reads, with a guest flooding its console:
    /// QMP still answers, and `quit` ends the process.
    func testQMPKeepsAnsweringWhileStdoutIsNotRead() throws {
        let qmpPath = Paths.temporary(self, "stall.qmp")
        let output = Pipe()
        _ = fcntl(output.fileHandleForWriting.fileDescriptor, GuestOutputAtExitTests.setPipeSize, 4096)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Paths.binary)
        process.arguments = ["-m", "16M", "-kernel", Paths.guest("faults.elf"), "-append", "mode=flood",
                             "-serial", "stdio", "-monitor", "none", "-qmp", "unix:\(qmpPath),server,nowait"]
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = output
        try process.run()
        defer { if process.isRunning { process.terminate() } }
        try? output.fileHandleForWriting.close()
        let qmp = try QMPConsolesTests.Client(unix: qmpPath)
        XCTAssertNotNil(qmp.negotiate())
        // The pipe is full long before this: the guest prints without pause.
        var available: Int32 = 0
        for _ in 0..<200 where available < 4096 {
            usleep(10_000)
            _ = ioctl(output.fileHandleForReading.fileDescriptor, UInt(FIONREAD), &available)
        }
        XCTAssertGreaterThanOrEqual(available, 4096, "the guest did not fill stdout")
        for _ in 0..<3 {
            qmp.send(#"{"execute": "query-status"}"#)
            XCTAssertEqual(qmp.message(), #"{"return": {"running": true, "singlestep": false, "status": "running"}}"# + "\r\n",
                           "QMP stopped answering while stdout was full")
        }
        qmp.send(#"{"execute": "quit"}"#)
        // Read now, so the exit's flush finds a reader; the flood beyond the bound was dropped.
        let received = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        XCTAssertEqual(process.terminationStatus, 0)
        XCTAssertGreaterThan(received.count, 4096)
    }
}
