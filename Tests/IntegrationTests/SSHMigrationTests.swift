import Foundation
import Glibc
import XCTest

/// Migration over ssh as between two hosts: two network namespaces joined by a veth pair,
/// Debian's OpenSSH server in the destination's with keys made for the test, and the source
/// running `migrate "exec:ssh ... swiftkvm -incoming stdio ..."` from the other.
final class SSHMigrationTests: XCTestCase {
    func testDirtyGuestMigratesOverSSHBetweenNetworkNamespaces() throws {
        let hosts = try SSHHostPair(test: self)
        let console = Paths.temporary(self, "dst-console.txt")
        let pidFile = Paths.temporary(self, "dst.pid")
        let guest = LiveMigrationTests.dirtyArgs()
        let source = try SwiftKVMProcess(guest, launcher: hosts.runInSource)
        defer { source.kill() }
        XCTAssertTrue(source.waitForOutput("sweep 64"), source.stdout + source.stderr)

        // The remote shell records its pid and then becomes swiftkvm, so the test can stop it.
        // Quoting: the monitor line's double quotes hold the exec: URI, in which `\"` is a
        // quote for the remote shell, inside the single quotes the local shell leaves alone.
        let words = guest.map { $0.contains(" ") ? "\\\"\($0)\\\"" : $0 }.joined(separator: " ")
        let remote = "echo $$ > \(pidFile); exec \(Paths.binary) \(words) -incoming stdio -serial file:\(console)"
        source.send(MigrationSettings.converging)
        source.send("migrate -d \"exec:\(hosts.sshCommand) '\(remote)'\"\n")
        let report = migrationReport(source, until: ["completed", "failed"], seconds: 120)
        XCTAssertTrue(report.hasPrefix("completed"), report + source.stderr + hosts.serverLog)
        source.send("info status\n")
        XCTAssertTrue(source.waitForOutput("VM status: paused (postmigrate)"), source.stdout)

        let pid = pid_t((try? String(contentsOfFile: pidFile, encoding: .utf8))?
            .trimmingCharacters(in: .whitespacesAndNewlines) ?? "") ?? 0
        XCTAssertGreaterThan(pid, 0, "the remote command never started: \(hosts.serverLog)")
        defer { if pid > 0 { kill(pid, SIGKILL) } }
        // The stream came through sshd, authenticated by the test's key.
        XCTAssertTrue(hosts.serverLog.contains("Accepted publickey for root"), hosts.serverLog)

        // The guest runs on the destination, and its own check of every page keeps passing.
        func sweeps() -> [Int] {
            let text = (try? String(contentsOfFile: console, encoding: .utf8)) ?? ""
            return text.components(separatedBy: "sweep ").dropFirst().compactMap { Int($0.prefix { $0.isNumber }) }
        }
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline && sweeps().count < 3 { usleep(200_000) }
        let text = (try? String(contentsOfFile: console, encoding: .utf8)) ?? ""
        XCTAssertGreaterThanOrEqual(sweeps().count, 3, "destination console: \(text)")
        XCTAssertFalse(text.contains("MISMATCH"), text)
        // It carries on from the source's count, not from sweep 1.
        XCTAssertGreaterThan(sweeps().first ?? 0, 64, text)
        XCTAssertEqual(kill(pid, 0), 0, "the destination keeps running after the source is done")
    }
}

/// Two "hosts" on one machine: network namespaces `src` and `dst` joined by a veth pair
/// (10.77.0.1 and 10.77.0.2), and sshd listening in `dst` with a host key and an authorized
/// client key generated here. Everything is removed when the test ends.
final class SSHHostPair {
    static let destinationAddress = "10.77.0.2"
    let source: String
    let destination: String
    let directory: String
    private let server = Process()
    private let serverOutput = Pipe()
    private let lock = NSLock()
    private var log = Data()

    /// Prefix that runs a command on the source host.
    var runInSource: [String] { ["/usr/sbin/ip", "netns", "exec", source] }
    /// An ssh client that trusts only the generated host key and offers only the client key.
    var sshCommand: String {
        "ssh -F /dev/null -i \(directory)/client_key -o IdentitiesOnly=yes -o BatchMode=yes" +
            " -o StrictHostKeyChecking=yes -o UserKnownHostsFile=\(directory)/known_hosts" +
            " root@\(Self.destinationAddress)"
    }
    var serverLog: String { lock.lock(); defer { lock.unlock() }; return String(decoding: log, as: UTF8.self) }

    init(test: XCTestCase) throws {
        let tag = "skvm-\(getpid())-\(UInt16.random(in: 0...UInt16.max))"
        source = tag + "-src"
        destination = tag + "-dst"
        directory = "/tmp/\(tag)-ssh"
        test.addTeardownBlock { [self] in tearDown() }
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)

        try Self.run("ip", "netns", "add", source)
        try Self.run("ip", "netns", "add", destination)
        try Self.run("ip", "-n", source, "link", "add", "veth0", "type", "veth", "peer", "name", "veth0", "netns", destination)
        for (namespace, address) in [(source, "10.77.0.1"), (destination, Self.destinationAddress)] {
            try Self.run("ip", "-n", namespace, "addr", "add", address + "/24", "dev", "veth0")
            try Self.run("ip", "-n", namespace, "link", "set", "veth0", "up")
            try Self.run("ip", "-n", namespace, "link", "set", "lo", "up")
        }

        for key in ["host_key", "client_key"] {
            try Self.run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", key, "-f", "\(directory)/\(key)")
        }
        let hostKey = try String(contentsOfFile: "\(directory)/host_key.pub", encoding: .utf8)
        try "\(Self.destinationAddress) \(hostKey)".write(toFile: "\(directory)/known_hosts", atomically: true, encoding: .utf8)
        try FileManager.default.copyItem(atPath: "\(directory)/client_key.pub", toPath: "\(directory)/authorized_keys")
        // StrictModes off: the keys live under world-writable /tmp for the test, where a real
        // host keeps them in the user's own ~/.ssh (root's is not the test's to touch).
        try """
        ListenAddress \(Self.destinationAddress)
        HostKey \(directory)/host_key
        AuthorizedKeysFile \(directory)/authorized_keys
        PermitRootLogin prohibit-password
        PasswordAuthentication no
        KbdInteractiveAuthentication no
        UsePAM no
        StrictModes no
        PidFile none
        LogLevel VERBOSE

        """.write(toFile: "\(directory)/sshd_config", atomically: true, encoding: .utf8)
        // sshd's privilege separation needs its empty directory, which the package's service
        // would create at boot.
        try FileManager.default.createDirectory(atPath: "/run/sshd", withIntermediateDirectories: true)

        server.executableURL = URL(fileURLWithPath: "/usr/sbin/ip")
        server.arguments = ["netns", "exec", destination, "/usr/sbin/sshd", "-D", "-e", "-f", "\(directory)/sshd_config"]
        server.standardOutput = serverOutput
        server.standardError = serverOutput
        serverOutput.fileHandleForReading.readabilityHandler = { [weak self] handle in
            let data = handle.availableData
            guard let self else { return }
            self.lock.lock(); self.log.append(data); self.lock.unlock()
            if data.isEmpty { handle.readabilityHandler = nil }
        }
        try server.run()
        let deadline = Date().addingTimeInterval(20)
        while !serverLog.contains("Server listening on") {
            guard server.isRunning, Date() < deadline else {
                throw SSHHostPairError(what: "sshd did not start: \(serverLog)")
            }
            usleep(50_000)
        }
    }

    private func tearDown() {
        if server.isRunning {
            server.terminate()
            server.waitUntilExit()
        }
        for namespace in [source, destination] { try? Self.run("ip", "netns", "del", namespace) }
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// Runs a command to completion; a non-zero exit is an error carrying its output.
    static func run(_ arguments: String...) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = arguments
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        try process.run()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw SSHHostPairError(what: "\(arguments.joined(separator: " ")) exited \(process.terminationStatus): \(text)")
        }
    }
}

struct SSHHostPairError: Error, CustomStringConvertible {
    var what: String
    var description: String { what }
}
