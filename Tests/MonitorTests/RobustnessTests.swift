import Glibc
import TestSupport
import XCTest
@testable import Monitor

/// Whatever a user types, the interpreter answers with output or an error and never traps.
final class RobustnessTests: XCTestCase {
    private let seeds = [
        "info status", "info registers -a", "info cpus", "info history", "info version", "help", "help info",
        "help info registers", "x /4xg 0x1000", "xp /16cb 0", "xp /3ow 0x10", "x/2dg 0xffff800000000000",
        "pmemsave 0 16 \"/nonexistent dir/a/b/c/x\"", "memsave 0 1K /nonexistent/a/b/c/y", "cpu 0", "cont -f", "stop",
        "system_reset", "xp /0xh 0", "help xp", "info", "?", "xp /2xg 0xfffffffffffffff8", "cpu 1",
    ]

    func testRandomAndMutatedLinesNeverTrap() {
        // Mutated `pmemsave` lines may name a relative file: keep them in a scratch directory.
        let scratch = FileManagerLite.makeTemporaryDirectory()
        var previous = [CChar](repeating: 0, count: 4096)
        XCTAssertNotNil(getcwd(&previous, previous.count))
        XCTAssertEqual(chdir(scratch), 0)
        defer {
            chdir(previous)
            for name in (try? FileManagerLite.list(scratch)) ?? [] { unlink(scratch + "/" + name) }
            rmdir(scratch)
        }
        let backend = FakeMonitorBackend(ramSize: 64 << 10, cpuCount: 2)
        let monitor = CommandInterpreter(backend: backend)
        var random = SplitMix64(seed: 0x5eed)
        let alphabet = Array(" \t\"\\/#-xpiofcdbhwgqKMGT0123456789abcdefABCDEF'\n\r".utf8)
        var withOutput = 0
        for round in 0..<5000 {
            let line = makeLine(round: round, random: &random, alphabet: alphabet)
            let outcome = monitor.execute(line)
            if let error = outcome.error { XCTAssertFalse(error.isEmpty, line.debugDescription) }
            if !outcome.output.isEmpty {
                withOutput += 1
                XCTAssertTrue(outcome.output.hasSuffix("\n"), "\(line.debugDescription) -> \(outcome.output)")
            }
            // Completion on the same line must not trap either.
            let cut = Int(random.next() % UInt64(line.utf8.count + 2))
            _ = monitor.completions(line: line, wordStart: cut, word: "")
        }
        XCTAssertGreaterThan(withOutput, 100)
        XCTAssertLessThanOrEqual(monitor.history.count, CommandInterpreter.historyLimit)
    }

    private func makeLine(round: Int, random: inout SplitMix64, alphabet: [UInt8]) -> String {
        switch round % 5 {
        case 0:
            // Pure noise from the monitor's own alphabet.
            let length = Int(random.next() % 40)
            return String(decoding: (0..<length).map { _ in alphabet[Int(random.next() % UInt64(alphabet.count))] },
                          as: UTF8.self)
        case 1:
            // A valid line with bytes changed, inserted or deleted.
            var bytes = Array(seeds[Int(random.next() % UInt64(seeds.count))].utf8)
            for _ in 0..<(1 + random.next() % 4) {
                let position = bytes.isEmpty ? 0 : Int(random.next() % UInt64(bytes.count))
                switch random.next() % 3 {
                case 0 where !bytes.isEmpty: bytes[position] = alphabet[Int(random.next() % UInt64(alphabet.count))]
                case 1: bytes.insert(alphabet[Int(random.next() % UInt64(alphabet.count))], at: position)
                default: if !bytes.isEmpty { bytes.remove(at: position) }
                }
            }
            return String(decoding: bytes, as: UTF8.self)
        case 2:
            // Arbitrary bytes, including NUL, control characters and invalid UTF-8.
            let length = Int(random.next() % 64)
            return String(decoding: (0..<length).map { _ in UInt8(truncatingIfNeeded: random.next()) }, as: UTF8.self)
        case 3:
            // Very long lines: long words, long numbers, many arguments.
            let seed = seeds[Int(random.next() % UInt64(seeds.count))]
            switch random.next() % 3 {
            case 0: return seed + " " + String(repeating: "9", count: 10_000)
            case 1: return "xp /" + String(repeating: "7", count: 5000) + "xb 0"
            default: return String(repeating: seed + " ", count: 500)
            }
        default:
            // Valid commands with random numbers in every position.
            let number = "0x" + String(random.next(), radix: 16)
            let templates = ["xp /\(random.next() % 70)\(["x", "d", "u", "o", "c"][Int(random.next() % 5)])"
                                + "\(["b", "h", "w", "g"][Int(random.next() % 4)]) \(number)",
                             "x /2xg \(number)", "cpu \(random.next() % 4)", "info registers \(random.next() % 4)",
                             "pmemsave \(number) \(random.next() % 3) /nonexistent/a/b/c/file"]
            return templates[Int(random.next() % UInt64(templates.count))]
        }
    }
}
