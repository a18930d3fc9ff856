import Glibc
import Machine
import XCTest
@testable import Migration

/// The pieces under the pre-copy loop: digest, zero-page scan, convergence and auto-converge.
final class MigrationMechanicsTests: XCTestCase {
    private func digest(_ bytes: [UInt8], chunks: [Int] = [], _ algorithm: StreamDigest.Algorithm = .xxh64) -> UInt64 {
        let d = StreamDigest(algorithm)
        var start = 0
        for size in chunks + [bytes.count] where start < bytes.count {
            let end = min(bytes.count, start + size)
            bytes[start..<end].withUnsafeBytes { d.update($0) }
            start = end
        }
        return d.value
    }

    func testDigestIsXXH64() {
        XCTAssertEqual(digest([]), 0xEF46_DB37_51D8_E999)
        XCTAssertEqual(digest(Array("abc".utf8)), 0x44BC_2CF5_AD77_0999)
        let long = Array("Nobody inspects the spammish repetition, and then some more bytes to pass 32.".utf8)
        XCTAssertEqual(digest(long), digest(long, chunks: [1, 31, 3, 40]))
        XCTAssertEqual(digest(long), digest(long, chunks: [32, 32]))
        XCTAssertNotEqual(digest(long), digest(long.dropLast() + [0]))
    }

    /// Stream 2.0's digest, fed in any pieces, and the algorithm each version's header names.
    func testDigestIsXXH3FromStream2() {
        XCTAssertEqual(digest([], .xxh3), 0x2D06_8005_38D3_94C2)
        XCTAssertEqual(digest(Array("abc".utf8), .xxh3), 0x78AF_5F94_892F_3950)
        let long = [UInt8]((0..<5000).map { UInt8(truncatingIfNeeded: $0 &* 7) })
        XCTAssertEqual(digest(long, .xxh3), digest(long, chunks: [1, 63, 300, 1000], .xxh3))
        XCTAssertNotEqual(digest(long, .xxh3), digest(long, .xxh64))
        XCTAssertEqual(StreamDigest().algorithm, .xxh3)
        XCTAssertEqual(StreamDigest.Algorithm(streamVersion: StreamVersion(major: 1, minor: 5)), .xxh64)
        XCTAssertEqual(StreamDigest.Algorithm(streamVersion: StreamVersion(major: 2, minor: 0)), .xxh3)
        let old = StreamFormat.magic + [1, 0, 5, 0, 0x05]
        XCTAssertEqual(StreamDigest.ofStream(old), digest(old))
        let new = StreamFormat.magic + [2, 0, 0, 0, 0x05]
        XCTAssertEqual(StreamDigest.ofStream(new), digest(new, .xxh3))
    }

    func testZeroPageDetection() {
        let page = UnsafeMutableRawPointer.allocate(byteCount: 4096, alignment: 4096)
        defer { page.deallocate() }
        memset(page, 0, 4096)
        XCTAssertTrue(isZeroPage(page))
        for offset in [0, 7, 63, 64, 2048, 4095] {
            page.storeBytes(of: 1, toByteOffset: offset, as: UInt8.self)
            XCTAssertFalse(isZeroPage(page), "non-zero byte at \(offset) missed")
            page.storeBytes(of: 0, toByteOffset: offset, as: UInt8.self)
        }
    }

    func testPageResidencySeesOnlyPagesNeverBacked() throws {
        let size = 64 * 4096
        let host = try XCTUnwrap(mmap(nil, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0))
        defer { munmap(host, size) }
        _ = madvise(host, size, MADV_NOHUGEPAGE)
        host.storeBytes(of: 1, toByteOffset: 3 * 4096, as: UInt8.self)
        host.storeBytes(of: 0, toByteOffset: 9 * 4096, as: UInt8.self)
        let residency = PageResidency()
        XCTAssertTrue(residency.load(host: host, count: 64))
        XCTAssertFalse(residency.isUntouched(3))
        XCTAssertFalse(residency.isUntouched(9), "written with zero is still backed, and scanned")
        XCTAssertTrue(residency.isUntouched(4))
        XCTAssertTrue(residency.isUntouched(63))
        XCTAssertFalse(residency.load(host: host, count: StreamFormat.maxBatchPages + 1), "more than it holds")
    }

    /// Postcopy's switchover leaves pages the host never backed out of the missing set, across
    /// several pagemap loads and a region that ends inside a word; backed pages stay, zero or not.
    func testClearingUntouchedPagesKeepsOnlyBackedOnes() throws {
        let pageCount = StreamFormat.maxBatchPages * 2 + 70
        let size = pageCount * 4096
        let host = try XCTUnwrap(mmap(nil, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0))
        defer { munmap(host, size) }
        _ = madvise(host, size, MADV_NOHUGEPAGE)
        let backed = [0, 63, 64, 1023, 1024, 2047, 2048, pageCount - 1]
        for page in backed { host.storeBytes(of: page == 64 ? 0 : 7, toByteOffset: page * 4096, as: UInt8.self) }
        var bitmap = [UInt64](repeating: .max, count: (pageCount + 63) / 64)
        bitmap[bitmap.count - 1] = (1 << UInt64(pageCount % 64)) - 1
        bitmap[20] = 0  // pages 1280-1343: not selected, so not loaded either
        let before = bitmap
        let cleared = PageResidency().clearUntouched(in: &bitmap, host: host, pageCount: pageCount)
        let kept = (0..<pageCount).filter { bitmap[$0 >> 6] & (1 << UInt64($0 & 63)) != 0 }
        XCTAssertEqual(kept, backed)
        XCTAssertEqual(PageBitmaps.count(cleared), pageCount - 64 - backed.count)
        XCTAssertEqual(zip(before, bitmap).map { $0 & ~$1 }, cleared, "what it returns is what it cleared")
    }

    private func pass(dirty: Int, expected: UInt64) -> PassReport {
        PassReport(pass: 2, pagesSent: 100, zeroPages: 0, bytesSent: 409_600, durationNs: 1_000_000,
                   bandwidth: 1 << 30, dirtyPages: dirty, expectedDowntimeMs: expected, isSwitchover: false)
    }

    func testDowntimePolicy() {
        let policy = ConvergencePolicies.downtimeLimit
        XCTAssertEqual(policy(ConvergenceInput(lastPass: pass(dirty: 10, expected: 301), guestRunning: true, downtimeLimitMs: 300)), .iterate)
        XCTAssertEqual(policy(ConvergenceInput(lastPass: pass(dirty: 10, expected: 300), guestRunning: true, downtimeLimitMs: 300)), .switchover)
        XCTAssertEqual(policy(ConvergenceInput(lastPass: pass(dirty: 10, expected: 900), guestRunning: false, downtimeLimitMs: 300)), .switchover)
    }

    func testShrinkingPolicyIteratesWhileTheDirtySetShrinksAndNeverSwitchesAboveTheLimit() {
        let policy = ConvergencePolicies.shrinkingDirtySet
        func decide(_ dirtyByPass: [Int], expected: UInt64, withinLimit: Int = 1, running: Bool = true) -> ConvergenceDecision {
            let reports = dirtyByPass.map { pass(dirty: $0, expected: 10) }
            var last = pass(dirty: dirtyByPass.last ?? 0, expected: expected)
            last.pass = dirtyByPass.count
            return policy(ConvergenceInput(lastPass: last, guestRunning: running, downtimeLimitMs: 300,
                                           earlierPasses: Array(reports.dropLast()), passesWithinLimit: withinLimit))
        }
        XCTAssertEqual(decide([24_000], expected: 40), .iterate, "after pass 1 it tries one more pass")
        XCTAssertEqual(decide([24_000], expected: 301, withinLimit: 0), .iterate, "above the limit it waits, as QEMU does")
        XCTAssertEqual(decide([24_000, 24_000, 24_000], expected: 301, withinLimit: 0), .iterate)
        XCTAssertEqual(decide([24_000], expected: 900, running: false), .switchover, "a paused guest dirties nothing")
        XCTAssertEqual(decide([24_000, 8_000], expected: 12), .iterate, "shrank to a third")
        XCTAssertEqual(decide([24_000, 8_000, 6_000], expected: 9), .iterate, "exactly 3/4 still counts as shrinking")
        XCTAssertEqual(decide([24_000, 8_000, 6_500], expected: 9), .iterate, "one pass that did not shrink gets another try")
        XCTAssertEqual(decide([24_000, 8_000, 6_500, 6_400], expected: 9), .switchover, "two in a row: it has converged")
        XCTAssertEqual(decide([24_000, 8_000, 2_000], expected: 3), .switchover, "at the floor another pass cannot win much")
        XCTAssertEqual(decide([24_000, 8_000], expected: 12, withinLimit: ConvergencePolicies.maxPassesWithinLimit), .switchover,
                       "the cap bounds the total time")
    }

    func testSnapshotsStopRecopyingWhenItStopsPayingOrTheFileGrowsLarge() {
        // Each report carries 409_600 bytes; the limit counts every pass so far, the last included.
        let policy = ConvergencePolicies.snapshot(ConvergencePolicies.downtimeLimit, limit: 4 * 409_600)
        func decide(_ dirtyByPass: [Int], expected: UInt64 = 5_000) -> ConvergenceDecision {
            let reports = dirtyByPass.map { pass(dirty: $0, expected: expected) }
            return policy(ConvergenceInput(lastPass: reports[reports.count - 1], guestRunning: true, downtimeLimitMs: 300,
                                           earlierPasses: Array(reports.dropLast()), passesWithinLimit: 0))
        }
        XCTAssertEqual(decide([10_000]), .iterate, "after pass 1 another pass may shrink the rest")
        XCTAssertEqual(decide([10_000, 7_500]), .iterate, "shrank to 3/4")
        XCTAssertEqual(decide([10_000, 7_600]), .switchover, "a pass that does not shrink the dirty set enough ends pre-copy")
        XCTAssertEqual(decide([10_000, 7_000, 5_000, 3_000]), .switchover, "the file has grown by the limit")
        XCTAssertEqual(decide([10_000], expected: 1), .switchover, "the wrapped policy still decides first")
    }

    func testAutoConvergeNeedsTwoHighPassesInARowAndStepsUpToTheMaximum() throws {
        var parameters = MigrationParameters()
        try parameters.set([(.cpuThrottleInitial, .unsigned(20)), (.cpuThrottleIncrement, .unsigned(30)),
                            (.maxCPUThrottle, .unsigned(70))])
        var converge = AutoConverge(parameters: parameters)
        XCTAssertNil(converge.afterPass(pagesDirtied: 60, pagesSent: 100))
        XCTAssertNil(converge.afterPass(pagesDirtied: 10, pagesSent: 100), "a low pass breaks the run")
        XCTAssertNil(converge.afterPass(pagesDirtied: 60, pagesSent: 100))
        XCTAssertEqual(converge.afterPass(pagesDirtied: 60, pagesSent: 100), 20)
        XCTAssertNil(converge.afterPass(pagesDirtied: 60, pagesSent: 100))
        XCTAssertEqual(converge.afterPass(pagesDirtied: 60, pagesSent: 100), 50)
        XCTAssertNil(converge.afterPass(pagesDirtied: 60, pagesSent: 100))
        XCTAssertEqual(converge.afterPass(pagesDirtied: 60, pagesSent: 100), 70)
        XCTAssertNil(converge.afterPass(pagesDirtied: 60, pagesSent: 100))
        XCTAssertNil(converge.afterPass(pagesDirtied: 60, pagesSent: 100), "already at max-cpu-throttle")
        XCTAssertNil(converge.afterPass(pagesDirtied: 50, pagesSent: 100), "exactly the threshold is not above it")
    }
}
