import XCTest

/// Bad command lines end with one clear line, the usage where the option was at fault, and
/// exit status 1: never a crash, never a started guest.
final class CommandLineErrorTests: XCTestCase {
    func assertFails(_ args: [String], mentioning fragment: String, usage: Bool, file: StaticString = #filePath, line: UInt = #line) throws {
        let r = try runSwiftKVM(args, seconds: 30)
        XCTAssertEqual(r.status, 1, "status for \(args): stderr \(r.stderr)", file: file, line: line)
        let first = r.stderr.split(separator: "\n").first.map(String.init) ?? ""
        XCTAssertTrue(first.hasPrefix("swiftkvm: "), "first line: \(first)", file: file, line: line)
        XCTAssertTrue(first.contains(fragment), "'\(first)' should mention '\(fragment)'", file: file, line: line)
        XCTAssertEqual(r.stderr.contains("usage: swiftkvm"), usage, r.stderr, file: file, line: line)
        XCTAssertFalse(r.stdout.contains("hello guest"), "no guest may run", file: file, line: line)
    }

    func testBadOptions() throws {
        try assertFails(["-m", "12Q"], mentioning: "-m", usage: true)
        try assertFails(["-m", "-5"], mentioning: "-m", usage: true)
        try assertFails(["-bogus"], mentioning: "-bogus", usage: true)
        try assertFails(["-kernel"], mentioning: "-kernel", usage: true)
        try assertFails(["-smp", "2,sockets=2"], mentioning: "-smp", usage: true)
        try assertFails(["-device", "e1000"], mentioning: "e1000", usage: true)
        try assertFails(["-serial", "carrier-pigeon"], mentioning: "-serial", usage: true)
    }

    func testBadGuests() throws {
        try assertFails(["-kernel", "/nonexistent/kernel.elf"], mentioning: "No such file", usage: false)
        try assertFails(["-kernel", "/bin/true"], mentioning: "PVH", usage: false)
        try assertFails(["-kernel", Paths.guest("bootsector.img")], mentioning: "-drive", usage: false)
        try assertFails(["-drive", "file=/etc/hostname,format=raw"], mentioning: "boot sector", usage: false)
        try assertFails(["-m", "1M", "-kernel", Paths.guest("hello.elf")], mentioning: "-m", usage: true)
        try assertFails(["-append", "x=1"], mentioning: "-append", usage: false)
    }

    func testADriveWithoutAFormatWarnsOnceWithOnePrefix() throws {
        let r = try runSwiftKVM(["-drive", "file=" + Paths.repository + "/README.md"], seconds: 30)
        XCTAssertEqual(r.status, 1, r.stderr)
        let first = r.stderr.split(separator: "\n").first.map(String.init) ?? ""
        XCTAssertEqual(first, "swiftkvm: warning: -drive file=\(Paths.repository)/README.md: no format given; using raw (add format=raw to silence this)")
        XCTAssertEqual(r.stderr.components(separatedBy: "no format given").count - 1, 1, r.stderr)
    }

    func testHelpAndVersion() throws {
        let help = try runSwiftKVM(["-h"])
        XCTAssertEqual(help.status, 0)
        for option in ["-m", "-kernel", "-append", "-drive", "-device", "-S", "-serial", "-monitor", "-nographic", "-name", "-smp", "-incoming"] {
            XCTAssertTrue(help.stdout.contains(option), "help lacks \(option)")
        }
        let version = try runSwiftKVM(["--version"])
        XCTAssertEqual(version.status, 0)
        XCTAssertTrue(version.stdout.hasPrefix("swiftkvm version "), version.stdout)
    }
}
