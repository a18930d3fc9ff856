import Glibc
import Machine
import XCTest

/// The repository's committed guest images.
enum GuestImages {
    static let root: String = {
        var parts = #filePath.split(separator: "/").map(String.init)
        parts.removeLast(3)  // Tests/MachineTests/<file>
        return "/" + parts.joined(separator: "/")
    }()
    static func path(_ name: String) -> String { root + "/guests/build/" + name }
}

/// Collects a machine's serial output from its console pipe.
final class ConsoleCollector {
    let fd: Int32
    private(set) var text = ""

    init(_ machine: Machine) { fd = machine.console.guestOutputFD }

    /// Reads until `needle` has appeared `count` times or `seconds` pass; returns whether it did.
    @discardableResult
    func waitFor(_ needle: String, count: Int = 1, seconds: Double = 20) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while occurrences(of: needle) < count {
            if Date() > deadline { return false }
            var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            _ = poll(&p, 1, 50)
            var buf = [UInt8](repeating: 0, count: 4096)
            let n = read(fd, &buf, buf.count)
            if n > 0 { text += String(decoding: buf[0..<n], as: UTF8.self) }
        }
        return true
    }

    func occurrences(of needle: String) -> Int { text.components(separatedBy: needle).count - 1 }
}

func requireKVM(file: StaticString = #filePath, line: UInt = #line) {
    // These machines all have /dev/kvm; a missing one is a broken machine, not a reason to skip.
    XCTAssertEqual(access("/dev/kvm", R_OK | W_OK), 0, "/dev/kvm is not usable here: KVM tests cannot run", file: file, line: line)
}
