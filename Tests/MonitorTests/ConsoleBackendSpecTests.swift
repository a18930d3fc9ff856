import XCTest
@testable import Monitor

final class ConsoleBackendSpecTests: XCTestCase {
    func testSerialSpecs() throws {
        XCTAssertEqual(try SerialBackendSpec(parsing: "stdio"), .stdio)
        XCTAssertEqual(try SerialBackendSpec(parsing: "null"), .null)
        XCTAssertEqual(try SerialBackendSpec(parsing: "file:/tmp/out.txt"), .file(path: "/tmp/out.txt"))
        XCTAssertEqual(try SerialBackendSpec(parsing: "unix:/tmp/s,server"), .unixServer(path: "/tmp/s", wait: true))
        XCTAssertEqual(try SerialBackendSpec(parsing: "unix:/tmp/s,server,nowait"), .unixServer(path: "/tmp/s", wait: false))
        XCTAssertEqual(try SerialBackendSpec(parsing: "unix:/tmp/s,server=on,wait=off"), .unixServer(path: "/tmp/s", wait: false))
    }

    func testMonitorSpecs() throws {
        XCTAssertEqual(try MonitorBackendSpec(parsing: "stdio"), .stdio)
        XCTAssertEqual(try MonitorBackendSpec(parsing: "none"), .none)
        XCTAssertEqual(try MonitorBackendSpec(parsing: "unix:/tmp/m,server,nowait"), .unixServer(path: "/tmp/m", wait: false))
    }

    func testRejectionsSayWhatIsAccepted() {
        XCTAssertThrowsError(try SerialBackendSpec(parsing: "tcp:1234")) { error in
            XCTAssertEqual("\(error)", "-serial 'tcp:1234' is not supported; use one of: stdio, null, file:PATH, unix:PATH,server[,nowait]")
        }
        XCTAssertThrowsError(try MonitorBackendSpec(parsing: "unix:/tmp/m")) { error in
            XCTAssertEqual(error as? BackendSpecError, .notAServer(option: "-monitor", value: "unix:/tmp/m"))
        }
        XCTAssertThrowsError(try SerialBackendSpec(parsing: "unix:/tmp/s,server,bogus")) { error in
            XCTAssertTrue("\(error)".contains("unknown socket option 'bogus'"))
        }
    }
}
