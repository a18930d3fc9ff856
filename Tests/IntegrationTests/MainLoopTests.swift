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
}
