import Foundation
import Glibc
import Machine
import XCTest
@testable import Migration

/// The destination's RAM prefaulter: what it may declare zero, and what it must not.
final class RAMPrefaulterTests: XCTestCase {
    private var mappings: [(UnsafeMutableRawPointer, Int)] = []

    override func tearDown() {
        for (host, size) in mappings { munmap(host, size) }
        mappings = []
    }

    private func region(pages: Int) -> GuestRAMRegion {
        let size = pages * GuestRAMRegion.pageSize
        let host = mmap(nil, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)!
        mappings.append((host, size))
        return GuestRAMRegion(guestAddress: 0, size: size, host: host)
    }

    /// Waits (with a generous bound against hangs, not as a timing check) until every chunk is published.
    private func waitForAllChunks(_ prefaulter: RAMPrefaulter, chunks: Int) -> Int {
        for _ in 0..<12_000 {
            let published = prefaulter.sync(passOnePosition: nil)
            if published == chunks { return published }
            usleep(10_000)
        }
        return prefaulter.sync(passOnePosition: nil)
    }

    func testOnlyUntouchedChunksAreKnownZeroAndWritesByTheReceiverCount() {
        let ram = region(pages: 1024 + 100)
        ram.host.storeBytes(of: 0xAB, toByteOffset: 700 * GuestRAMRegion.pageSize + 9, as: UInt8.self)
        let prefaulter = RAMPrefaulter(regions: [ram], yieldsToEverything: false)
        prefaulter.start()
        let published = waitForAllChunks(prefaulter, chunks: 3)
        prefaulter.stop()
        XCTAssertEqual(published, 3)
        XCTAssertTrue(prefaulter.isKnownZero(region: 0, page: 5, published: published))
        XCTAssertTrue(prefaulter.isKnownZero(region: 0, page: 1024 + 99, published: published), "the short last chunk counts")
        XCTAssertFalse(prefaulter.isKnownZero(region: 0, page: 600, published: published), "its chunk holds a non-zero byte")
        XCTAssertFalse(prefaulter.isKnownZero(region: 0, page: 5, published: 0), "nothing is known before it is published")
        prefaulter.markWritten(region: 0, firstPage: 4, count: 2)
        XCTAssertFalse(prefaulter.isKnownZero(region: 0, page: 5, published: published), "the receiver wrote it")
        XCTAssertTrue(prefaulter.isKnownZero(region: 0, page: 6, published: published))
        XCTAssertEqual(ram.host.load(fromByteOffset: 700 * GuestRAMRegion.pageSize + 9, as: UInt8.self), 0xAB,
                       "committing memory never changes it")
    }

    /// Committed chunks that stayed zero and unwritten go back to the host, in two regions and
    /// up to a limit; a chunk the receiver wrote, or one holding data, keeps its memory.
    func testZeroChunksAreReleasedAndWrittenOrNonZeroOnesKept() {
        let first = region(pages: 1024), second = region(pages: 1024 + 100)
        _ = madvise(first.host, first.size, MADV_NOHUGEPAGE)
        _ = madvise(second.host, second.size, MADV_NOHUGEPAGE)
        second.host.storeBytes(of: 0xAB, toByteOffset: 10 * GuestRAMRegion.pageSize, as: UInt8.self)
        let prefaulter = RAMPrefaulter(regions: [first, second], yieldsToEverything: false)
        prefaulter.start()
        XCTAssertEqual(waitForAllChunks(prefaulter, chunks: 5), 5)
        prefaulter.stop()
        prefaulter.markWritten(region: 0, firstPage: 600, count: 1)
        XCTAssertEqual(prefaulter.releaseZeroChunks(below: prefaulter.chunk(region: 1, page: 0)), 1, "only chunk 0 below region 1")
        // Chunks 0 (released) and 1 (written) of region 0; 2 (data), 3 and 4 (short) of region 1.
        XCTAssertEqual(prefaulter.releaseZeroChunks(below: prefaulter.chunkCount), 2)
        let residency = PageResidency()
        func untouched(_ r: GuestRAMRegion, _ page: Int) -> Bool {
            residency.load(host: r.host + page * GuestRAMRegion.pageSize, count: 1) && residency.isUntouched(0)
        }
        XCTAssertTrue(untouched(first, 0) && untouched(first, 511), "chunk 0 was given back")
        XCTAssertFalse(untouched(first, 512), "chunk 1 holds a page the receiver wrote")
        XCTAssertFalse(untouched(second, 0), "chunk 2 holds data")
        XCTAssertEqual(second.host.load(fromByteOffset: 10 * GuestRAMRegion.pageSize, as: UInt8.self), 0xAB)
        XCTAssertTrue(untouched(second, 512) && untouched(second, 1024 + 99), "chunks 3 and 4 were given back")
        XCTAssertTrue(prefaulter.isKnownZero(region: 0, page: 5, published: 5), "a released chunk still reads zero")
        XCTAssertEqual(prefaulter.releaseZeroChunks(below: prefaulter.chunkCount), 0, "each chunk once")
    }

    func testChunksPassOneHasPassedAreLeftAlone() {
        let ram = region(pages: 2048)
        let prefaulter = RAMPrefaulter(regions: [ram], yieldsToEverything: false)
        _ = prefaulter.sync(passOnePosition: (region: 0, page: 1030))
        prefaulter.start()
        let published = waitForAllChunks(prefaulter, chunks: 4)
        prefaulter.stop()
        XCTAssertEqual(published, 4)
        XCTAssertFalse(prefaulter.isKnownZero(region: 0, page: 3, published: published), "skipped, so not verified")
        XCTAssertTrue(prefaulter.isKnownZero(region: 0, page: 1030, published: published))
    }

    /// A receiver far ahead of the last commit is reading zero pages faster than memory can be
    /// committed: the prefaulter ends on its own instead of committing what lies ahead.
    func testOutpacedByTheReceiverItStopsCommitting() {
        let chunks = 70
        let ram = region(pages: chunks * RAMPrefaulter.chunkPages)
        let prefaulter = RAMPrefaulter(regions: [ram], yieldsToEverything: false)
        _ = prefaulter.sync(passOnePosition: (region: 0, page: 66 * RAMPrefaulter.chunkPages))
        prefaulter.start()
        for _ in 0..<12_000 where prefaulter.isRunning { usleep(10_000) }
        XCTAssertFalse(prefaulter.isRunning, "it ended without being asked to")
        let published = prefaulter.sync(passOnePosition: nil)
        XCTAssertEqual(published, 66, "it went up to the receiver and committed nothing beyond")
        XCTAssertFalse(prefaulter.isKnownZero(region: 0, page: 67 * RAMPrefaulter.chunkPages, published: chunks))
        prefaulter.stop()
    }

    func testDestinationWithStaleRAMEndsUpIdenticalToTheSource() throws {
        let source = FakeMachine(regionSizes: [4 << 20, 1 << 20])
        source.fillPattern(seed: 42, zeroEvery: 2)
        let destination = FakeMachine(regionSizes: [4 << 20, 1 << 20], running: false)
        destination.fillPattern(seed: 9, zeroEvery: 7)
        let incoming = try IncomingMigration.listen(uri: "tcp:127.0.0.1:0")
        let receiving = Background { try incoming.receive(into: destination) }
        let controller = MigrationController()
        try controller.migrate(uri: "tcp:127.0.0.1:\(incoming.boundPort ?? 0)", machine: source)
        XCTAssertEqual(controller.waitForCompletion(), .completed)
        _ = try receiving.wait().get()
        XCTAssertTrue(source.ramEquals(destination))
    }
}
