import Foundation
import XCTest

/// scripts/emulated-host driven from a test: builds L1's image in a fresh folder (removed when
/// the test ends), boots it, and parses what its checks printed.
final class EmulatedHost {
    static let repository: String = {
        var parts = #filePath.split(separator: "/").map(String.init)
        parts.removeLast(3)  // Tests/LinuxGuestTests/<file>
        return "/" + parts.joined(separator: "/")
    }()

    struct ScriptFailed: Error, CustomStringConvertible {
        let command: [String]
        let status: Int32
        let output: String
        var description: String { "\(command.joined(separator: " ")) exited with status \(status):\n\(output)" }
    }

    let folder: String
    private(set) var console = ""
    private var buildSeconds = 0.0
    private var runSeconds = 0.0

    init(test: XCTestCase) throws {
        folder = "/tmp/skvm-linux-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let folder = self.folder
        test.addTeardownBlock { try? FileManager.default.removeItem(atPath: folder) }
    }

    /// Builds L1's initramfs with scripts/emulated-host's build options; the swiftkvm in it is the
    /// script's release build of this checkout (a debug build is too slow under TCG).
    func build(_ options: [String]) throws {
        let started = Date()
        let (status, output) = try Self.script(["build", folder] + options,
                                               outputFile: folder + "/build.log")
        buildSeconds = Date().timeIntervalSince(started)
        guard status == 0 else {
            throw ScriptFailed(command: ["scripts/emulated-host", "build"] + options, status: status, output: output)
        }
    }

    /// Boots L1, which runs the checks and powers off; L1's console is kept in `console`.
    func run(timeoutSeconds: Int) throws -> EmulatedHostReport {
        let started = Date()
        let (status, output) = try Self.script(["run", folder, "--timeout", "\(timeoutSeconds)"],
                                               outputFile: folder + "/run.log")
        runSeconds = Date().timeIntervalSince(started)
        console = output
        guard status == 0 else {
            throw ScriptFailed(command: ["scripts/emulated-host", "run"], status: status, output: output)
        }
        return EmulatedHostReport(console: output)
    }

    /// L1's console, then the report's summary last: a log cut to its tail still shows why.
    func printFailedRun(_ report: EmulatedHostReport) {
        print(console)
        print(report.failureSummary())
    }

    /// One line with the time of the build, L1's boot and every step, for the log and README.
    func timings(_ report: EmulatedHostReport) -> String {
        var parts = [String(format: "build %.0f s", buildSeconds)]
        if let boot = report.number("host-boot-wall") { parts.append(String(format: "L1 boot %.1f s", boot)) }
        for name in report.stepOrder {
            parts.append("\(name) " + (report.steps[name]?.seconds.map { String(format: "%.1f s", $0) } ?? "-"))
        }
        parts.append(String(format: "whole L1 run %.0f s", runSeconds))
        return "emulated host: " + parts.joined(separator: ", ")
    }

    /// Runs scripts/emulated-host with stdout and stderr to a file (no pipe to drain).
    private static func script(_ arguments: [String], outputFile: String) throws -> (Int32, String) {
        _ = FileManager.default.createFile(atPath: outputFile, contents: nil)
        let output = try FileHandle(forWritingTo: URL(fileURLWithPath: outputFile))
        defer { try? output.close() }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: repository + "/scripts/emulated-host")
        process.arguments = arguments
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = output
        process.standardError = output
        try process.run()
        process.waitUntilExit()
        // Consoles carry firmware escape sequences and may carry broken bytes: decode leniently.
        let text = String(decoding: FileManager.default.contents(atPath: outputFile) ?? Data(), as: UTF8.self)
        return (process.terminationStatus, text)
    }
}
