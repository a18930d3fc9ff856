import Foundation
import Glibc
import Machine
import XCTest
@testable import Migration

/// The pieces under postcopy: what a pass cut short leaves to send, the fault statistics, and
/// missing-page faults on plain memory (userfaultfd, no KVM).
final class PostcopyMechanicsTests: XCTestCase {
    private func regions(_ pageCounts: [Int]) -> [GuestRAMRegion] {
        // Only the page counts matter to `remaining`; nothing is read through these.
        pageCounts.map { GuestRAMRegion(guestAddress: 0, size: $0 * 4096, host: UnsafeMutableRawPointer(bitPattern: 0x1000)!) }
    }

    private func pages(_ bitmap: [UInt64]) -> [Int] {
        (0..<(bitmap.count * 64)).filter { bitmap[$0 >> 6] & (1 << UInt64($0 & 63)) != 0 }
    }

    func testAPassCutShortLeavesWhatItHadNotSent() {
        let layout = regions([100, 70])
        let all = PageSelection.all.remaining(from: (0, 65), regions: layout)
        XCTAssertEqual(pages(all[0]), Array(65..<100))
        XCTAssertEqual(pages(all[1]), Array(0..<70))
        let dirty: [[UInt64]] = [[0b1011, 0], [0b110]]
        let union = PageSelection.union(dirty, [[1 << 40, 0], [1 << 9]]).remaining(from: (1, 2), regions: layout)
        XCTAssertEqual(pages(union[0]), [], "region 0 lies wholly before the cut")
        XCTAssertEqual(pages(union[1]), [2, 9])
        XCTAssertEqual(pages(PageSelection.dirty(dirty).remaining(from: (0, 0), regions: layout)[0]), [0, 1, 3])
    }

    func testFaultStatisticsMedianAndTail() {
        let samples = (1...200).map { UInt64($0) * 1000 }  // 1 ... 200 us
        let stats = PostcopyFaultStats(latenciesNs: samples.shuffled())
        XCTAssertEqual(stats.faults, 200)
        XCTAssertEqual(stats.medianMicroseconds, 101)
        XCTAssertEqual(stats.p99Microseconds, 199)
        XCTAssertEqual(stats.blocktimeMs, 20)
        XCTAssertEqual(PostcopyFaultStats(latenciesNs: []).p99Microseconds, 0)
    }

    func testMissingPageWaitsUntilPlacedAndUnbackedPagesReadZero() throws {
        let size = 8 * 4096
        guard let raw = mmap(nil, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0), raw != MAP_FAILED else {
            return XCTFail("mmap failed")
        }
        defer { munmap(raw, size) }
        raw.storeBytes(of: 7, toByteOffset: 0, as: UInt8.self)  // page 0 present, page 1 still missing
        raw.storeBytes(of: 9, toByteOffset: 4096, as: UInt8.self)
        let region = GuestRAMRegion(guestAddress: 0, size: size, host: raw)
        let ram = try PostcopyRAM(regions: [region], missing: [[0b10]])
        // The reading thread stops on each missing page until this one resolves it.
        let readDone = DispatchSemaphore(value: 0)
        nonisolated(unsafe) var seen: [UInt8] = []
        let address = UInt(bitPattern: raw)
        Thread {
            let memory = UnsafeRawPointer(bitPattern: address)!
            seen = [0, 4096, 5 * 4096].map { memory.load(fromByteOffset: $0, as: UInt8.self) }
            readDone.signal()
        }.start()
        var placed = false, filledZero = false
        while !(placed && filledZero) {
            var entry = pollfd(fd: ram.pollDescriptor, events: Int16(POLLIN), revents: 0)
            XCTAssertEqual(poll(&entry, 1, 10_000), 1, "the reader's fault must arrive")
            while let fault = try ram.nextFault() {
                XCTAssertEqual(fault.region, 0)
                if fault.page == 1 {
                    var page = [UInt8](repeating: 0x42, count: 4096)
                    XCTAssertTrue(try page.withUnsafeMutableBytes { try ram.place(region: 0, page: 1, from: $0.baseAddress!) })
                    placed = true
                } else {
                    XCTAssertEqual(fault.page, 5)
                    try ram.fillZero(region: 0, page: 5)
                    filledZero = true
                }
            }
        }
        XCTAssertEqual(readDone.wait(timeout: .now() + 10), .success)
        XCTAssertEqual(seen, [7, 0x42, 0], "the dropped page reads what was placed, never its old byte")
        ram.finish()
    }

    /// A pushed record goes in with one copy; pages already placed (a request served first)
    /// keep what they have, wherever they sit in the run.
    func testARunOfPagesIsPlacedAroundPagesAlreadyThere() throws {
        let pages = 8, size = pages * 4096
        guard let raw = mmap(nil, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0), raw != MAP_FAILED else {
            return XCTFail("mmap failed")
        }
        defer { munmap(raw, size) }
        let ram = try PostcopyRAM(regions: [GuestRAMRegion(guestAddress: 0, size: size, host: raw)], missing: [[0xFF]])
        defer { ram.finish() }
        for (page, byte) in [(0, UInt8(0xA0)), (3, 0xA3), (7, 0xA7)] {
            var bytes = [UInt8](repeating: byte, count: 4096)
            XCTAssertTrue(try bytes.withUnsafeMutableBytes { try ram.place(region: 0, page: page, from: $0.baseAddress!) })
        }
        var run = [UInt8](repeating: 0x5E, count: size)
        XCTAssertEqual(try run.withUnsafeMutableBytes { try ram.place(region: 0, firstPage: 0, count: pages, from: $0.baseAddress!) }, 5)
        XCTAssertEqual(try run.withUnsafeMutableBytes { try ram.place(region: 0, firstPage: 2, count: 2, from: $0.baseAddress!) }, 0)
        XCTAssertEqual((0..<pages).map { raw.load(fromByteOffset: $0 * 4096 + 100, as: UInt8.self) },
                       [0xA0, 0x5E, 0x5E, 0xA3, 0x5E, 0x5E, 0x5E, 0xA7])
    }
}
