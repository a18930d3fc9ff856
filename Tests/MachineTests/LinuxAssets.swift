import Foundation
import XCTest

/// Debian's kernels, through the asset script the harness shares (scripts/linux-assets): it
/// downloads them into a cache folder once; tests fail, never skip, when that is impossible.
enum LinuxAssets {
    private static var cache: [String: String] = [:]
    private static let lock = NSLock()

    static func path(_ name: String, file: StaticString = #filePath, line: UInt = #line) throws -> String {
        lock.lock(); defer { lock.unlock() }
        if let known = cache[name] { return known }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: GuestImages.root + "/scripts/linux-assets")
        process.arguments = [name]
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        let errors = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        let found = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        guard process.terminationStatus == 0, !found.isEmpty else {
            XCTFail("scripts/linux-assets \(name) failed: \(errors)", file: file, line: line)
            throw CocoaError(.fileNoSuchFile)
        }
        cache[name] = found
        return found
    }
}
