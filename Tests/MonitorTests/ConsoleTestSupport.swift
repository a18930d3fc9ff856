import Glibc
import Machine
import XCTest
@testable import Monitor

/// A guest whose UART takes at most `acceptPerCall` bytes per offer, and whose serial output
/// is a pipe the test writes into.
final class FakeGuestConsole: GuestConsole {
    let guestOutputFD: Int32
    let outputWriteFD: Int32
    var acceptPerCall = Int.max
    private(set) var received: [UInt8] = []

    init() {
        var fds: [Int32] = [-1, -1]
        _ = pipe(&fds)
        _ = fcntl(fds[0], F_SETFL, O_NONBLOCK)
        guestOutputFD = fds[0]
        outputWriteFD = fds[1]
    }

    func emit(_ text: String) {
        let bytes = Array(text.utf8)
        _ = write(outputWriteFD, bytes, bytes.count)
    }

    func sendToGuest(_ bytes: ArraySlice<UInt8>) -> Int {
        let taken = bytes.prefix(acceptPerCall)
        received += taken
        return taken.count
    }

    deinit {
        close(guestOutputFD)
        close(outputWriteFD)
    }
}

func temporarySocketPath(_ name: String) -> String {
    "/tmp/swiftkvm-test-\(getpid())-\(name).sock"
}

struct ConnectFailed: Error { let path: String; let errno: Int32 }

/// A blocking client socket connected to `path`.
func connectClient(to path: String) throws -> Int32 {
    let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
    var address = sockaddr_un()
    address.sun_family = sa_family_t(AF_UNIX)
    withUnsafeMutableBytes(of: &address.sun_path) { raw in
        let bytes = Array(path.utf8)
        raw.copyBytes(from: bytes)
        raw[bytes.count] = 0
    }
    let result = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
        }
    }
    guard result == 0 else { close(fd); throw ConnectFailed(path: path, errno: errno) }
    return fd
}

func sendText(_ fd: Int32, _ text: String) {
    let bytes = Array(text.utf8)
    _ = write(fd, bytes, bytes.count)
}

/// Reads what the client can get within a second, running the loop meanwhile, until `done`.
func readClient(_ fd: Int32, loop: PollLoop, until done: (String) -> Bool) throws -> String {
    var text = ""
    for _ in 0..<200 {
        try loop.runOnce(timeoutMilliseconds: 5)
        var pending = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        if poll(&pending, 1, 5) > 0 {
            var buffer = [UInt8](repeating: 0, count: 4096)
            let n = read(fd, &buffer, buffer.count)
            if n <= 0 { break }
            text += String(decoding: buffer[0..<n], as: UTF8.self)
        }
        if done(text) { break }
    }
    return text
}

/// Runs the loop until `condition` holds (at most about two seconds of waiting).
func runLoop(_ loop: PollLoop, until condition: () -> Bool) throws {
    for _ in 0..<200 where !condition() {
        try loop.runOnce(timeoutMilliseconds: 10)
    }
}
