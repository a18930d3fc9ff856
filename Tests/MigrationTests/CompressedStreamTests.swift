import CZstd
import Glibc
import Machine
import XCTest
@testable import Migration

/// Compressed RAM batches (stream 1.5, multifd-compression zstd): what the writer sends, what
/// the destination accepts, and what it refuses.
final class CompressedStreamTests: XCTestCase {
    /// Enough pages for several batches in flight at once.
    private static let regionSizes = [2048 * 1024, 64 * 1024]

    /// Text-like pages (compressible), every fifth page random (not), every third zero.
    private func mixedSource() -> FakeMachine {
        let machine = FakeMachine(regionSizes: Self.regionSizes)
        machine.fillPattern(seed: 3, zeroEvery: 3)
        let text = Array("swiftkvm migrates this guest's page cache; ".utf8)
        for region in machine.ramRegions {
            for page in 0..<region.pageCount where page % 3 != 0 && page % 5 != 0 {
                let base = region.host + page * GuestRAMRegion.pageSize
                for offset in 0..<GuestRAMRegion.pageSize {
                    base.storeBytes(of: text[(offset + page) % text.count] ^ UInt8(truncatingIfNeeded: offset >> 9), toByteOffset: offset, as: UInt8.self)
                }
            }
        }
        return machine
    }

    func testACompressedStreamArrivesExactly() throws {
        // Several threads compress at once; the batches still go out in order.
        for (level, threads) in [(0, 1), (1, 1), (1, 2), (3, 4), (19, 1)] {
            let source = mixedSource()
            var writer: StreamWriter?
            let stream = try captureStream(of: source) { created in
                XCTAssertTrue(created.startCompression(level: level, threads: threads))
                created.compressionPolicy.alwaysTry = true
                writer = created
            }
            let counts = try XCTUnwrap(writer?.compression)
            XCTAssertGreaterThan(counts.batches, 0, "level \(level)")
            XCTAssertLessThan(counts.frameBytes, counts.pages * 4096 * 7 / 8)
            let plain = try captureStream(of: source)
            XCTAssertLessThan(stream.count, plain.count * 3 / 4, "level \(level): compressed \(stream.count), plain \(plain.count)")

            let destination = FakeMachine(regionSizes: Self.regionSizes, running: false)
            let (result, reply) = receive(stream, into: destination)
            let report = try result.get()
            XCTAssertEqual(reply, .ack)
            XCTAssertTrue(source.ramEquals(destination), "level \(level)")
            XCTAssertEqual(report.normalPages + report.zeroPages, (Self.regionSizes[0] + Self.regionSizes[1]) / 4096)
        }
    }

    func testIncompressiblePagesGoPlain() throws {
        let source = FakeMachine(regionSizes: Self.regionSizes)
        source.fillPattern(seed: 8, zeroEvery: 1_000_000)
        var writer: StreamWriter?
        let stream = try captureStream(of: source) { created in
            XCTAssertTrue(created.startCompression(level: 1))
            created.compressionPolicy.alwaysTry = true
            writer = created
        }
        let counts = try XCTUnwrap(writer?.compression)
        XCTAssertEqual(counts.batches, 0)
        XCTAssertEqual(counts.didNotShrink + counts.notTried, 5, "five batches, all plain")
        XCTAssertGreaterThanOrEqual(Int(counts.didNotShrink), CompressionPolicy.missesBeforeSampling, "tried before sampling began")
        let destination = FakeMachine(regionSizes: Self.regionSizes, running: false)
        let (result, _) = receive(stream, into: destination)
        _ = try result.get()
        XCTAssertTrue(source.ramEquals(destination))
    }

    func testIncompressibleDataIsOnlySampledAfterFourMisses() {
        var policy = CompressionPolicy()
        var tried: [Int] = []
        for batch in 0..<60 where policy.shouldTry(backlog: nil, written: 0, now: 0, plainBytes: 1 << 19) {
            tried.append(batch)
            policy.record(shrank: false, plainBytes: 1 << 19, nanoseconds: 200_000)
        }
        XCTAssertEqual(tried, [0, 1, 2, 3] + Array(stride(from: 7, to: 60, by: 4)), "four misses, then one batch in four")
        // Data that shrinks again is tried every batch from then on.
        policy.record(shrank: true, plainBytes: 1 << 19, nanoseconds: 1_500_000)
        XCTAssertTrue(policy.shouldTry(backlog: nil, written: 0, now: 0, plainBytes: 1 << 19))
        XCTAssertTrue(policy.shouldTry(backlog: nil, written: 0, now: 0, plainBytes: 1 << 19))
    }

    /// Batches of 512 KiB handed to a socket whose queue stays at `backlog` while the link
    /// sends `rate` bytes per second; zstd takes 1.5 ms per batch. Returns which were tried.
    private func tried(backlog: Int, rate: Double, batches: Int = 12, queueEmptied: Bool = false) -> [Bool] {
        var policy = CompressionPolicy()
        policy.alwaysTry = false
        let batch = 1 << 19
        var now: UInt64 = 1_000_000_000
        var written: UInt64 = 0
        var decisions: [Bool] = []
        for index in 0..<batches {
            let queue = queueEmptied && index % 2 == 1 ? 0 : backlog
            let decided = policy.shouldTry(backlog: queue, written: written, now: now, plainBytes: batch)
            decisions.append(decided)
            if decided { policy.record(shrank: true, plainBytes: batch, nanoseconds: 1_500_000) }
            written += UInt64(batch)
            now += UInt64(Double(batch) / rate * 1e9)
        }
        return decisions
    }

    func testBatchesAreTriedOnlyWhileTheQueueOutlastsACompression() {
        // 1 Gbit/s with 4 MiB queued: the link stays busy for 33 ms, a compression takes 1.5 ms.
        let slow = tried(backlog: 4 << 20, rate: 125e6)
        XCTAssertFalse(slow[0], "nothing is tried before the link's rate is known")
        XCTAssertTrue(slow.dropFirst().allSatisfy { $0 }, "\(slow)")
        // Loopback, 3 GB/s, with the same queue: it drains in 1.4 ms, faster than zstd works.
        XCTAssertTrue(tried(backlog: 4 << 20, rate: 3e9).allSatisfy { !$0 })
        // 1 Gbit/s with only 128 KiB queued: 1 ms of link time, less than twice a compression.
        XCTAssertTrue(tried(backlog: 128 << 10, rate: 125e6).allSatisfy { !$0 })
        // A queue seen empty in between measures nothing: the link may have idled.
        XCTAssertTrue(tried(backlog: 4 << 20, rate: 125e6, queueEmptied: true).allSatisfy { !$0 })
    }

    func testAStreamWithoutAQueueTriesEveryBatch() {
        var policy = CompressionPolicy()
        policy.alwaysTry = false
        XCTAssertTrue(policy.shouldTry(backlog: nil, written: 0, now: 1, plainBytes: 1 << 19), "a file or pipe: whatever shrinks is compressed")
    }

    // MARK: hostile frames

    /// Header, layout and the RAM coding record of a stream for `regionSizes`, as the writer sends them.
    private func codedPrefix() throws -> [UInt8] {
        let machine = FakeMachine(regionSizes: Self.regionSizes)
        let stream = try captureStream(of: machine) { XCTAssertTrue($0.startCompression(level: 1)) }
        let layoutEnd = try XCTUnwrap(stream.firstIndex(of: StreamFormat.Tag.ramCoding.rawValue))
        return Array(stream[0..<(layoutEnd + 2)])
    }

    private func batch(tag: StreamFormat.Tag = .compressedBatch, kinds: [StreamFormat.PageKind], frameLength: Int? = nil,
                       frame: [UInt8]) -> [UInt8] {
        var bytes: [UInt8] = [tag.rawValue]
        withUnsafeBytes(of: UInt32(0).littleEndian) { bytes += $0 }
        withUnsafeBytes(of: UInt64(4).littleEndian) { bytes += $0 }
        withUnsafeBytes(of: UInt32(kinds.count).littleEndian) { bytes += $0 }
        bytes += kinds.map(\.rawValue)
        withUnsafeBytes(of: UInt32(frameLength ?? frame.count).littleEndian) { bytes += $0 }
        return bytes + frame
    }

    /// One zstd frame of `plain`; `windowLog` forces a frame header that asks for that window.
    private func zstdFrame(_ plain: [UInt8], windowLog: Int32? = nil) -> [UInt8] {
        let context = ZSTD_createCCtx()
        defer { ZSTD_freeCCtx(context) }
        if let windowLog {
            _ = ZSTD_CCtx_setParameter(context, ZSTD_c_windowLog, windowLog)
            _ = ZSTD_CCtx_setParameter(context, ZSTD_c_contentSizeFlag, 0)
        }
        var output = [UInt8](repeating: 0, count: ZSTD_compressBound(plain.count))
        let length = output.withUnsafeMutableBytes { out in
            plain.withUnsafeBytes { input in
                var outBuffer = ZSTD_outBuffer(dst: out.baseAddress, size: out.count, pos: 0)
                var inBuffer = ZSTD_inBuffer(src: input.baseAddress, size: input.count, pos: 0)
                // Without a size known up front (input first, then the end), zstd keeps the window asked for.
                if windowLog != nil { _ = ZSTD_compressStream2(context, &outBuffer, &inBuffer, ZSTD_e_continue) }
                _ = ZSTD_compressStream2(context, &outBuffer, &inBuffer, ZSTD_e_end)
                return outBuffer.pos
            }
        }
        return Array(output[0..<length])
    }

    private func refusal(_ tail: [UInt8], prefix: [UInt8]? = nil) throws -> String {
        let bytes = (try prefix ?? codedPrefix()) + tail
        let destination = FakeMachine(regionSizes: Self.regionSizes, running: false)
        let (result, reply) = receive(bytes, into: destination)
        guard case .failure(let error) = result else {
            XCTFail("accepted")
            return ""
        }
        guard case .error(let message)? = reply else {
            XCTFail("the source heard no reason")
            return ""
        }
        XCTAssertEqual(message, "\(error)")
        XCTAssertTrue(destination.loadedStates.isEmpty)
        XCTAssertEqual(destination.resumeCount, 0)
        return "\(error)"
    }

    func testCorruptAndOversizedFramesAreRefusedWithTheirReason() throws {
        let page = [UInt8](repeating: 0x5A, count: 4096)
        let twoPages = page + page
        let batchName = "the compressed RAM batch for pages 4+2 of region 0 was refused"
        let cases: [(String, [UInt8])] = [
            ("zstd: Unknown frame descriptor", batch(kinds: [.normal, .zero], frame: [UInt8](repeating: 0xEE, count: 100))),
            ("it decompresses to more bytes than its normal pages", batch(kinds: [.normal, .zero], frame: zstdFrame(twoPages))),
            ("it decompresses to fewer bytes than its normal pages", batch(kinds: [.normal, .normal], frame: zstdFrame(page))),
            ("its frame is cut short", batch(kinds: [.normal, .skipped], frame: Array(zstdFrame(page + Array(0..<255)).dropLast(3)))),
            ("3 bytes follow its frame", batch(kinds: [.normal, .zero], frame: zstdFrame(page) + [1, 2, 3])),
            ("zstd: Frame requires too much memory for decoding", batch(kinds: [.normal, .zero], frame: zstdFrame(page, windowLog: 27))),
            ("its frame claims 4096 bytes for 1 normal pages (4096 bytes); a compressed frame must be smaller",
             batch(kinds: [.normal, .zero], frame: [UInt8](repeating: 0, count: 4096))),
            ("its frame claims 4294967295 bytes for 2 normal pages (8192 bytes); a compressed frame must be smaller",
             batch(kinds: [.normal, .normal], frameLength: Int(UInt32.max), frame: [])),
            ("its frame claims 0 bytes for 0 normal pages (0 bytes); a compressed frame must be smaller",
             batch(kinds: [.zero, .zero], frame: [])),
        ]
        for (reason, tail) in cases {
            XCTAssertEqual(try refusal(tail), "migration stream is corrupt: \(batchName): \(reason)")
        }
    }

    func testCompressedBatchesNeedTheCodingRecordFirst() throws {
        let coded = try codedPrefix()
        let plainPrefix = Array(coded.dropLast(2))
        let frame = zstdFrame([UInt8](repeating: 1, count: 4096))
        XCTAssertEqual(try refusal(batch(kinds: [.normal, .zero], frame: frame), prefix: plainPrefix),
                       "migration stream is corrupt: a compressed RAM batch in a stream without a RAM coding record")
        XCTAssertEqual(try refusal([StreamFormat.Tag.ramCoding.rawValue, 1], prefix: coded),
                       "migration stream is corrupt: a RAM coding record after RAM pages or state, or a second one")
        XCTAssertEqual(try refusal([StreamFormat.Tag.ramCoding.rawValue, 2], prefix: plainPrefix),
                       "migration stream is corrupt: RAM coding 2 (this swiftkvm decodes 1, zstd)")
    }
}
