import TestSupport
import XCTest
@testable import swiftkvm

/// Whatever a user types, the parser answers with a configuration or an OptionError; it never traps.
final class RandomArgumentTests: XCTestCase {
    private let vocabulary = [
        "-m", "-kernel", "-append", "-initrd", "-drive", "-device", "-serial", "-monitor", "-S", "-nographic", "-name",
        "-smp", "-incoming", "-enable-kvm", "-accel", "--m", "-", "--", "", "512", "0", "-1", "2G", "12Q",
        "99999999999999999999999999G", "size=", "file=a", "format=raw", "format=qcow2", "isa-debug-exit",
        "iobase=0x", "iosize=0xffff", "stdio", "unix:", "tcp::", "tcp:[::1]:1", ",", ",,", "=", "server",
        "nowait", "defer", "cpus=1", "1", "guest=", "\u{0}", "é", "🙂", "0x", "kvm",
    ]

    func testRandomArgumentListsNeverTrap() {
        var generator = SplitMix64(seed: 0x5eed)
        for _ in 0..<2000 {
            let count = Int(generator.next() % 8)
            let arguments = (0..<count).map { _ in randomArgument(&generator) }
            do {
                let config = try CommandLineParser.parse(arguments)
                XCTAssertGreaterThanOrEqual(config.memorySize, Configuration.minimumMemorySize)
                XCTAssertLessThanOrEqual(config.memorySize, Configuration.maximumMemorySize)
                XCTAssertEqual(config.cpuCount, 1)
            } catch let error as OptionError {
                let message = error.description
                XCTAssertTrue(message.hasPrefix("swiftkvm: "), message)
            } catch {
                XCTFail("unexpected error type for \(arguments): \(error)")
            }
        }
    }

    private func randomArgument(_ generator: inout SplitMix64) -> String {
        switch generator.next() % 4 {
        case 0, 1:
            return vocabulary[Int(generator.next() % UInt64(vocabulary.count))]
        case 2:
            // Glue pieces together with commas, equals signs and colons.
            let pieces = (0..<Int(generator.next() % 4)).map { _ in vocabulary[Int(generator.next() % UInt64(vocabulary.count))] }
            let glue = [",", "=", ":", ""][Int(generator.next() % 4)]
            return pieces.joined(separator: glue)
        default:
            let length = Int(generator.next() % 12)
            let scalars = (0..<length).compactMap { _ in Unicode.Scalar(UInt32(generator.next() % 0x80)) }
            return String(String.UnicodeScalarView(scalars))
        }
    }
}
