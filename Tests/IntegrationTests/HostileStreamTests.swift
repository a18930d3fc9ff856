import Foundation
import Glibc
import TestSupport
import XCTest
@testable import Migration

/// A real `swiftkvm -incoming tcp:` process fed broken and hostile streams derived from one
/// captured from a real source. Each must end with a clear error, exit status 1 (not a
/// signal), and no guest output on the destination's console: the guest never started.
final class HostileStreamTests: XCTestCase {
    static let guestArgs = ["-m", "16M", "-kernel", Paths.guest("hello.elf")]
    private static let captureLock = NSLock()
    private static var cachedStream: [UInt8]?

    /// A stream recorded from a real source migrating its running guest into the test, which
    /// plays the destination and acknowledges once the end marker arrived.
    static func capturedStream() throws -> [UInt8] {
        try captureLock.withLock {
            if let stream = cachedStream { return stream }
            let (listener, port) = Loopback.listen()
            defer { close(listener) }
            let sink = TestThread { () -> [UInt8] in
                let fd = Loopback.accept(listener)
                defer { close(fd) }
                var bytes: [UInt8] = []
                var chunk = [UInt8](repeating: 0, count: 1 << 16)
                while !StreamRecords.parse(bytes).complete {
                    let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
                    if n <= 0 { break }
                    bytes += chunk[0..<n]
                }
                _ = Loopback.writeAll(fd, [0x10][...])
                return bytes
            }
            let source = try SwiftKVMProcess(guestArgs)
            defer { source.kill() }
            XCTAssertTrue(source.waitForOutput("tick 1"), source.stdout)
            source.send("migrate tcp:127.0.0.1:\(port)\n")
            XCTAssertTrue(source.waitForOutput("migration: completed"), source.stdout + source.stderr)
            let stream = try XCTUnwrap(sink.wait())
            XCTAssertTrue(StreamRecords.parse(stream).complete, "captured \(stream.count) bytes")
            cachedStream = stream
            return stream
        }
    }

    struct Outcome {
        var status: Int32?
        var exitedNormally: Bool
        var stdout: String
        var stderr: String
        var reply: [UInt8]
        var guestRan: Bool { stdout.contains("hello guest") || stdout.contains("tick") }
    }

    /// Starts a destination, sends `bytes` (nil: connect and close at once), closes the
    /// sending side, and collects what happened.
    func feed(_ bytes: [UInt8]?) throws -> Outcome {
        let port = Loopback.freePort()
        let destination = try SwiftKVMProcess(Self.guestArgs + ["-incoming", "tcp:127.0.0.1:\(port)"])
        defer { destination.kill() }
        let fd = try XCTUnwrap(Loopback.connect(port: port), destination.stderr)
        var timeout = timeval(tv_sec: 30, tv_usec: 0)
        _ = setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        if let bytes { _ = Loopback.writeAll(fd, bytes[...]) }
        shutdown(fd, Int32(SHUT_WR))
        let reply = Loopback.readToEnd(fd)
        close(fd)
        // A destination that accepted keeps running; one that refused exits on its own.
        let status = destination.waitForExit(seconds: reply == [0x10] ? 2 : 60)
        return Outcome(status: status, exitedNormally: status != nil && destination.process.terminationReason == .exit,
                       stdout: destination.stdout, stderr: destination.stderr, reply: reply)
    }

    /// The destination refused: status 1 by exit, a clear message, the source told, no guest.
    func assertRefused(_ bytes: [UInt8]?, _ what: String, mentioning text: String? = nil,
                       file: StaticString = #filePath, line: UInt = #line) throws {
        let outcome = try feed(bytes)
        XCTAssertEqual(outcome.status, 1, "\(what): \(outcome.stderr)", file: file, line: line)
        XCTAssertTrue(outcome.exitedNormally, "\(what): killed by a signal", file: file, line: line)
        XCTAssertTrue(outcome.stderr.contains("incoming migration failed: "), "\(what): \(outcome.stderr)", file: file, line: line)
        XCTAssertTrue(outcome.stderr.contains("the guest was not started"), "\(what): \(outcome.stderr)", file: file, line: line)
        XCTAssertFalse(outcome.guestRan, "\(what): the guest ran: \(outcome.stdout)", file: file, line: line)
        XCTAssertNotEqual(outcome.reply.first, 0x10, "\(what): acknowledged", file: file, line: line)
        if let text {
            XCTAssertTrue(outcome.stderr.contains(text), "\(what): expected '\(text)' in \(outcome.stderr)", file: file, line: line)
        }
    }

    func testCapturedStreamRunsTheGuestOnADestination() throws {
        let outcome = try feed(try Self.capturedStream())
        XCTAssertEqual(outcome.reply, [0x10])
        XCTAssertNil(outcome.status, "the destination keeps running the guest")
        XCTAssertTrue(outcome.stdout.contains("tick") || outcome.stderr.contains("incoming migration completed"), outcome.stdout + outcome.stderr)
    }

    /// A stream labelled 1.5 and sealed with 1.x's XXH64 runs the guest (old snapshot files,
    /// older sources); the same bytes sealed with XXH3 are refused as corrupt.
    func testAVersion1StreamWithItsXXH64DigestStillRunsAndAnXXH3OneDoesNot() throws {
        var stream = try Self.capturedStream()
        stream.replaceSubrange(4..<8, with: le16(1) + le16(5))
        let body = Array(stream.dropLast(8))
        let outcome = try feed(body + le64(StreamDigest.ofStream(body)))
        XCTAssertEqual(outcome.reply, [0x10], outcome.stderr)
        XCTAssertNil(outcome.status, "the destination keeps running the guest: \(outcome.stderr)")
        let xxh3 = StreamDigest(.xxh3)
        xxh3.update(body)
        try assertRefused(body + le64(xxh3.value), "a 1.5 stream with an XXH3 digest", mentioning: "digest")
    }

    func testStreamCutAtEveryBoundaryAndAtRandomOffsetsIsRefused() throws {
        let stream = try Self.capturedStream()
        let records = StreamRecords.parse(stream).records
        var cuts = Set(records.map(\.endOffset).filter { $0 < stream.count })
        cuts.insert(0)
        // Many RAM batches: keep the first and last few boundaries and a sample between.
        if cuts.count > 30 {
            let sorted = cuts.sorted()
            cuts = Set(sorted.prefix(10) + sorted.suffix(10) + stride(from: 10, to: sorted.count - 10, by: max(1, (sorted.count - 20) / 10)).map { sorted[$0] })
        }
        var random = SplitMix64(seed: 42)
        for _ in 0..<20 { cuts.insert(Int(random.next() % UInt64(stream.count))) }
        cuts.insert(stream.count - 1)
        for cut in cuts.sorted() {
            try assertRefused(Array(stream[0..<cut]), "stream cut at \(cut) of \(stream.count)")
        }
    }

    func testSingleBitFlipsAreRefused() throws {
        let stream = try Self.capturedStream()
        let records = StreamRecords.parse(stream).records
        var offsets = Set<Int>()
        // One flip in each kind of record, and the rest anywhere.
        for record in records.prefix(3) + records.suffix(6) { offsets.insert(record.offset + record.length / 2) }
        var random = SplitMix64(seed: 7)
        while offsets.count < 40 { offsets.insert(Int(random.next() % UInt64(stream.count))) }
        for offset in offsets.sorted() {
            var bytes = stream
            let bit = UInt8(1) << UInt8(offset % 8)
            bytes[offset] ^= bit
            try assertRefused(bytes, "bit \(offset % 8) flipped at \(offset) of \(stream.count)")
        }
    }

    func testHostileRecordsAreRefusedBeforeUse() throws {
        let stream = try Self.capturedStream()
        let records = StreamRecords.parse(stream).records
        let layoutEnd = try XCTUnwrap(records.first { $0.kind == .layout }).endOffset
        let body = Array(stream[0..<layoutEnd])
        let pages = UInt64(16 << 20) / 4096
        try assertRefused(body + [0x02] + le32(0) + le64(pages) + le32(1) + [2], "page index past RAM",
                          mentioning: "RAM batch for pages \(pages)+1")
        try assertRefused(body + [0x02] + le32(0) + le64(pages - 1) + le32(2) + [2, 2], "batch running past RAM",
                          mentioning: "of region 0, which has \(pages)")
        try assertRefused(body + [0x02] + le32(7) + le64(0) + le32(1) + [2], "region past the layout",
                          mentioning: "region 7")
        try assertRefused(body + [0x02] + le32(0) + le64(0) + le32(0xFFFF_FFFF), "oversized batch",
                          mentioning: "RAM batch of 4294967295 pages")
        try assertRefused(body + [0x03] + le32(1) + [0x04] + le16(4) + Array("cpu0".utf8) + le32(1) + le32(0xFFFF_FFFF),
                          "oversized state section", mentioning: "claims 4294967295 bytes")
        try assertRefused(body + [0x04] + le16(0xFFFF), "oversized section name", mentioning: "claims 65535 bytes")
    }

    func testStateSectionOfTheWrongSizeIsRefused() throws {
        let stream = try Self.capturedStream()
        let records = StreamRecords.parse(stream).records
        let state = try XCTUnwrap(records.first { if case .state = $0.kind { return true } else { return false } })
        guard case .state(let name) = state.kind else { return }
        let lengthAt = state.offset + 3 + name.utf8.count + 4
        let length = Int(stream[lengthAt]) | Int(stream[lengthAt + 1]) << 8 | Int(stream[lengthAt + 2]) << 16
        // One byte short, with a digest that matches: only the machine's own check can refuse it.
        var bytes = Array(stream[0..<lengthAt]) + le32(UInt32(length - 1))
        bytes += stream[(lengthAt + 4)..<(state.endOffset - 1)]
        let endRecord = try XCTUnwrap(records.last)
        bytes += stream[state.endOffset..<endRecord.offset]
        bytes.append(0x05)
        bytes += le64(StreamDigest.ofStream(bytes))
        try assertRefused(bytes, "state section '\(name)' one byte short", mentioning: name)
    }

    /// The captured stream with one state section's fields (tag u32, length u32, bytes)
    /// rewritten by `edit`, and a digest that matches: only the machine's checks can refuse it.
    static func rewritingFields(of sectionName: String, in stream: [UInt8],
                                _ edit: ([(tag: UInt32, bytes: [UInt8])]) -> [(tag: UInt32, bytes: [UInt8])]) throws -> [UInt8] {
        let records = StreamRecords.parse(stream).records
        let state = try XCTUnwrap(records.first { $0.kind == .state(sectionName) }, "no section \(sectionName)")
        let payloadStart = state.offset + 11 + sectionName.utf8.count
        var fields: [(tag: UInt32, bytes: [UInt8])] = []
        var at = payloadStart
        func u32(_ o: Int) -> UInt32 { (0..<4).reduce(UInt32(0)) { $0 | UInt32(stream[o + $1]) << (8 * $1) } }
        while at < state.endOffset {
            let length = Int(u32(at + 4))
            fields.append((u32(at), Array(stream[(at + 8)..<(at + 8 + length)])))
            at += 8 + length
        }
        let payload = edit(fields).flatMap { le32($0.tag) + le32(UInt32($0.bytes.count)) + $0.bytes }
        var bytes = Array(stream[0..<(payloadStart - 4)]) + le32(UInt32(payload.count)) + payload
        let endRecord = try XCTUnwrap(records.last)
        bytes += stream[state.endOffset..<endRecord.offset]
        bytes.append(0x05)
        return bytes + le64(StreamDigest.ofStream(bytes))
    }

    func testAStreamWithoutRAMIsRefused() throws {
        let stream = try Self.capturedStream()
        var bytes: [UInt8] = []
        for record in StreamRecords.parse(stream).records {
            switch record.kind {
            case .ramBatch: continue
            case .end: bytes.append(0x05)
            default: bytes += stream[record.offset..<record.endOffset]
            }
        }
        try assertRefused(bytes + le64(StreamDigest.ofStream(bytes)), "layout, state and end marker without pages",
                          mentioning: "\((16 << 20) / 4096) pages of guest RAM never arrived")
    }

    func testKVMStateThatDoesNotFitThisHostIsRefused() throws {
        let stream = try Self.capturedStream()
        // kvm-vm: PIT = 1, clock = 2, irqchip = 3 (Sources/KVM/VMState.swift).
        try assertRefused(try Self.rewritingFields(of: "kvm-vm", in: stream) { fields in
            fields.map { $0.tag == 3 ? ($0.tag, [0, 0, 0, 0] + $0.bytes.dropFirst(4)) : $0 }
        }, "three irqchips with chip id 0", mentioning: "chip id 0 appears twice")
        try assertRefused(try Self.rewritingFields(of: "kvm-vm", in: stream) { fields in
            fields + fields.filter { $0.tag == 1 }
        }, "two PIT fields", mentioning: "bad PIT state: appears twice")
        try assertRefused(try Self.rewritingFields(of: "kvm-vm", in: stream) { fields in
            fields.filter { $0.tag != 2 }
        }, "no clock", mentioning: "state lacks clock")
        try assertRefused(try Self.rewritingFields(of: "kvm-vm", in: stream) { fields in
            fields.filter { $0.tag != 1 }
        }, "no PIT", mentioning: "state lacks PIT")
        // cpu0: XSAVE = 4, MSRs = 10 (index u32, value u64 each) (Sources/KVM/VCPUState.swift).
        try assertRefused(try Self.rewritingFields(of: "cpu0", in: stream) { fields in
            fields.map { $0.tag == 4 ? ($0.tag, $0.bytes + [UInt8](repeating: 0, count: 64)) : $0 }
        }, "XSAVE larger than this vCPU's", mentioning: "XSAVE state is")
        try assertRefused(try Self.rewritingFields(of: "cpu0", in: stream) { fields in
            fields.map { $0.tag == 10 ? ($0.tag, $0.bytes + le32(0x4B56_FFFF) + le64(1)) : $0 }
        }, "an MSR this host does not list", mentioning: "MSR 0x4b56ffff is not one this host's KVM saves and restores")
    }

    func testWrongMagicNewerVersionGarbageAndEmptyConnectionAreRefused() throws {
        let stream = try Self.capturedStream()
        var magic = stream
        magic[0] = UInt8(ascii: "Q")
        try assertRefused(magic, "wrong magic", mentioning: "not a swiftkvm migration stream")
        var newer = stream
        newer[4] = 3  // major 3, minor 0 (little-endian u16s after the magic)
        newer[5] = 0
        newer[6] = 0
        newer[7] = 0
        try assertRefused(newer, "newer version", mentioning: "format version 3.0 is newer")
        var random = SplitMix64(seed: 3)
        let garbage = (0..<100_000).map { _ in UInt8(truncatingIfNeeded: random.next()) }
        try assertRefused(garbage, "garbage")
        try assertRefused(nil, "empty connection", mentioning: "closed the connection")
    }
}

func le16(_ v: UInt16) -> [UInt8] { withUnsafeBytes(of: v.littleEndian) { Array($0) } }
func le32(_ v: UInt32) -> [UInt8] { withUnsafeBytes(of: v.littleEndian) { Array($0) } }
func le64(_ v: UInt64) -> [UInt8] { withUnsafeBytes(of: v.littleEndian) { Array($0) } }
