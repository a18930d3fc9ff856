import Foundation
import XCTest

/// QMP's `migrate` takes the URIs the human monitor's does (one parser for both); here a
/// snapshot to `file:`, which needs no destination process.
final class QMPMigrateURITests: XCTestCase {
    private func migrateThroughQMP(to uri: String) throws -> String {
        let qmpPath = Paths.temporary(self, "qmp")
        let vm = try SwiftKVMProcess(["-m", "32M", "-kernel", Paths.guest("hello.elf"), "-serial", "null",
                                      "-monitor", "none", "-qmp", "unix:\(qmpPath),server,nowait"])
        defer { vm.kill() }
        let client = try QMPConsolesTests.Client(unix: qmpPath)
        XCTAssertNotNil(client.negotiate())
        client.send(#"{"execute": "migrate", "arguments": {"uri": "\#(uri)"}}"#)
        XCTAssertEqual(client.message(), #"{"return": {}}"# + "\r\n")
        var reply = ""
        for _ in 0..<100 {
            client.send(#"{"execute": "query-migrate"}"#)
            reply = client.message() ?? ""
            if reply.contains(#""status": "completed""#) || reply.contains(#""status": "failed""#) { break }
            usleep(100_000)
        }
        client.send(#"{"execute": "quit"}"#)
        return reply
    }

    func testMigrateToAFileSavesASnapshot() throws {
        let snapshot = Paths.temporary(self, "snap")
        let reply = try migrateThroughQMP(to: "file:\(snapshot)")
        XCTAssertTrue(reply.contains(#""status": "completed""#), reply)
        let bytes = FileManager.default.contents(atPath: snapshot) ?? Data()
        XCTAssertEqual(Array(bytes.prefix(4)), Array("SKVM".utf8), "the snapshot file holds the stream")
    }
}
