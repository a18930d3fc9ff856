import Foundation
import Glibc
import XCTest

/// Paths of the build products and the committed guests, found from this test bundle.
enum Paths {
    static let repository: String = {
        var parts = #filePath.split(separator: "/").map(String.init)
        parts.removeLast(3)  // Tests/IntegrationTests/<file>
        return "/" + parts.joined(separator: "/")
    }()
    static let binary: String = {
        // The test bundle sits in the build products folder next to the swiftkvm executable.
        let bundle = Bundle.main.bundleURL.deletingLastPathComponent()
        let candidates = [bundle.appendingPathComponent("swiftkvm").path,
                          URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("swiftkvm").path,
                          repository + "/.build/debug/swiftkvm"]
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0) } ?? candidates.last!
    }()
    static func guest(_ name: String) -> String { repository + "/guests/build/" + name }

    /// A fresh path for a socket or file, removed when the test ends.
    static func temporary(_ test: XCTestCase, _ name: String) -> String {
        let path = "/tmp/skvm-\(getpid())-\(UInt32.random(in: 0...UInt32.max))-\(name)"
        test.addTeardownBlock { unlink(path) }
        return path
    }
}

/// Monitor lines that make a migration of the `dirty` guest converge on any machine: the link
/// unlimited and a 2 s downtime budget converge it on a quiet one; auto-converge throttles the
/// guest where a loaded machine sends too slowly for that (it never engages otherwise), so the
/// tests that need a completed migration don't depend on the machine keeping up with the guest.
enum MigrationSettings {
    static let converging = "migrate_set_parameter max-bandwidth 10G\nmigrate_set_parameter downtime-limit 2000\nmigrate_set_capability auto-converge on\n"
}

/// A running `swiftkvm` with its stdin, stdout and stderr on pipes.
final class SwiftKVMProcess {
    /// The process's resident memory now (VmRSS), in KiB; 0 once it has gone.
    var residentKiB: Int {
        let status = (try? String(contentsOfFile: "/proc/\(process.processIdentifier)/status", encoding: .utf8)) ?? ""
        let line = status.split(separator: "\n").first { $0.hasPrefix("VmRSS:") } ?? ""
        return Int(line.split(separator: " ").dropFirst().first ?? "") ?? 0
    }

    let process = Process()
    private let stdinPipe = Pipe()
    private let stdoutPipe = Pipe()
    private let stderrPipe = Pipe()
    private let lock = NSCondition()
    private var out = Data()
    private var err = Data()
    private var openStreams = 2

    /// - Parameter launcher: a command that runs swiftkvm in its place and keeps the pid, such
    ///   as `ip netns exec NAME` (empty: swiftkvm itself).
    init(_ arguments: [String], environment: [String: String] = [:], launcher: [String] = []) throws {
        // A process that already exited (a port another test took first) must fail its own
        // test when written to, not kill the whole test run with SIGPIPE.
        signal(SIGPIPE, SIG_IGN)
        process.executableURL = URL(fileURLWithPath: launcher.first ?? Paths.binary)
        process.arguments = launcher.isEmpty ? arguments : Array(launcher.dropFirst()) + [Paths.binary] + arguments
        var env = ProcessInfo.processInfo.environment
        env["SWIFTKVM_HISTORY"] = ""
        for (k, v) in environment { env[k] = v }
        process.environment = env
        process.standardInput = stdinPipe
        process.standardOutput = stdoutPipe
        process.standardError = stderrPipe
        stdoutPipe.fileHandleForReading.readabilityHandler = { [weak self] h in self?.append(h.availableData, toStdout: true) }
        stderrPipe.fileHandleForReading.readabilityHandler = { [weak self] h in self?.append(h.availableData, toStdout: false) }
        try process.run()
    }

    deinit {
        if process.isRunning { process.terminate() }
        stdoutPipe.fileHandleForReading.readabilityHandler = nil
        stderrPipe.fileHandleForReading.readabilityHandler = nil
    }

    private func append(_ data: Data, toStdout: Bool) {
        lock.lock()
        if data.isEmpty {
            // End of file: the process closed this stream (usually by exiting).
            openStreams -= 1
            (toStdout ? stdoutPipe : stderrPipe).fileHandleForReading.readabilityHandler = nil
        }
        if toStdout { out.append(data) } else { err.append(data) }
        lock.broadcast()
        lock.unlock()
    }

    var stdout: String { lock.lock(); defer { lock.unlock() }; return String(decoding: out, as: UTF8.self) }
    var stderr: String { lock.lock(); defer { lock.unlock() }; return String(decoding: err, as: UTF8.self) }

    func send(_ text: String) {
        try? stdinPipe.fileHandleForWriting.write(contentsOf: Data(text.utf8))
    }

    func closeStdin() { try? stdinPipe.fileHandleForWriting.close() }

    /// Waits until stdout contains `needle` `count` times; false after `seconds`.
    @discardableResult
    func waitForOutput(_ needle: String, count: Int = 1, seconds: Double = 30) -> Bool {
        waitFor(seconds: seconds) { $0.components(separatedBy: needle).count - 1 >= count }
    }

    /// Waits until `condition` holds for stdout; false after `seconds`.
    @discardableResult
    func waitFor(seconds: Double = 30, _ condition: (String) -> Bool) -> Bool {
        waitFor(seconds: seconds, stream: \.out, condition)
    }

    /// Waits until stderr contains `needle`; false after `seconds`.
    @discardableResult
    func waitForStderr(_ needle: String, seconds: Double = 30) -> Bool {
        waitFor(seconds: seconds, stream: \.err) { $0.contains(needle) }
    }

    private func waitFor(seconds: Double, stream: KeyPath<SwiftKVMProcess, Data>, _ condition: (String) -> Bool) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        lock.lock()
        defer { lock.unlock() }
        // The condition sees a copy: it must not take the lock itself.
        while !condition(String(decoding: self[keyPath: stream], as: UTF8.self)) {
            if !lock.wait(until: deadline) { return condition(String(decoding: self[keyPath: stream], as: UTF8.self)) }
        }
        return true
    }

    /// Waits for the process to end; returns its status, or nil if it still runs after `seconds`.
    func waitForExit(seconds: Double = 30) -> Int32? {
        let deadline = Date().addingTimeInterval(seconds)
        while process.isRunning {
            if Date() > deadline { return nil }
            usleep(20_000)
        }
        // Let the readability handlers deliver the last bytes of both streams.
        let drained = Date().addingTimeInterval(5)
        lock.lock()
        while openStreams > 0 && lock.wait(until: drained) {}
        lock.unlock()
        return process.terminationStatus
    }

    func kill() {
        if process.isRunning { process.terminate() }
        _ = waitForExit(seconds: 5)
    }
}

/// Runs swiftkvm to completion with `stdin` as its whole input.
func runSwiftKVM(_ arguments: [String], stdin: String = "", seconds: Double = 60) throws -> (status: Int32?, stdout: String, stderr: String) {
    let p = try SwiftKVMProcess(arguments)
    p.send(stdin)
    p.closeStdin()
    let status = p.waitForExit(seconds: seconds)
    if status == nil { p.kill() }
    return (status, p.stdout, p.stderr)
}

/// A free loopback TCP port: bound, read back and released (the short race is fine in tests).
func freeLoopbackPort() -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_addr.s_addr = inet_addr("127.0.0.1")
    _ = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
    var len = socklen_t(MemoryLayout<sockaddr_in>.size)
    _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
    return Int(UInt16(bigEndian: addr.sin_port))
}
