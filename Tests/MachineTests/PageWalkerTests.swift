@testable import Machine
import XCTest

final class PageWalkerTests: XCTestCase {
    /// A sparse guest-physical memory of 8-byte entries.
    var entries: [UInt64: UInt64] = [:]
    func walker(cr0: UInt64 = 0x8000_0011, cr3: UInt64, cr4: UInt64, efer: UInt64) -> PageWalker {
        var r = CPURegisters()
        r.cr0 = cr0; r.cr3 = cr3; r.cr4 = cr4; r.efer = efer
        return PageWalker(registers: r) { [entries] pa, size in
            guard pa < 0x1000_0000 else { return nil }
            let v = entries[pa] ?? 0
            return size == 4 ? v & 0xffff_ffff : v
        }
    }

    func testLongModeFourKAnd2MPages() throws {
        // PML4 at 0x1000 -> PDPT 0x2000 -> PD 0x3000; PD[0] -> PT 0x4000 (4 KiB pages), PD[1] 2 MiB page.
        entries[0x1000] = 0x2000 | 7
        entries[0x2000] = 0x3000 | 7
        entries[0x3000] = 0x4000 | 7
        entries[0x3008] = 0x0060_0000 | 0x87
        entries[0x4000 + 5 * 8] = 0x0009_9000 | 7
        let w = walker(cr3: 0x1000, cr4: 1 << 5, efer: 1 << 10 | 1 << 8)
        XCTAssertEqual(try w.translate(0x5123), 0x99123)
        XCTAssertEqual(try w.translate(0x20_0000 + 0x1234), 0x60_1234)
        XCTAssertThrowsError(try w.translate(0x6000)) { XCTAssertEqual($0 as? PageWalker.WalkError, .notMapped(virtualAddress: 0x6000)) }
    }

    /// Linux's layout: the kernel at 0xffffffff81000000 through 2 MiB pages (PML4 entry 511,
    /// PDPT entry 510) and the direct map at 0xffff888000000000 through 1 GiB pages, NX set.
    func testKernelAddressesThrough2MAnd1GPages() throws {
        let nx: UInt64 = 1 << 63
        entries[0x1000 + 511 * 8] = 0x2000 | 3
        entries[0x2000 + 510 * 8] = 0x3000 | 3
        entries[0x3000 + 8 * 8] = 0x0100_0000 | 0x83  // 0xffffffff81000000 -> 16 MiB
        entries[0x1000 + 273 * 8] = nx | 0x5000 | 3  // 0xffff888000000000
        entries[0x5000 + 1 * 8] = nx | 0x4000_0000 | 0x83  // second GiB of the direct map -> 1 GiB
        let w = walker(cr3: 0x1000, cr4: 1 << 5, efer: 1 << 10 | 1 << 8 | 1 << 11)
        XCTAssertEqual(try w.translate(0xffff_ffff_8100_0000 + 0x1_2345), 0x101_2345)
        XCTAssertEqual(try w.translate(0xffff_8880_4000_0000 + 0x3456_789a), 0x7456_789a)
        XCTAssertThrowsError(try w.translate(0xffff_ffff_8120_0000)) {
            XCTAssertEqual($0 as? PageWalker.WalkError, .notMapped(virtualAddress: 0xffff_ffff_8120_0000))
        }
    }

    func testPagingOffIsIdentity() throws {
        XCTAssertEqual(try walker(cr0: 0x11, cr3: 0, cr4: 0, efer: 0).translate(0x1234_5678), 0x1234_5678)
    }

    func testTableOutsideRAM() {
        XCTAssertThrowsError(try walker(cr3: 0x2000_0000, cr4: 1 << 5, efer: 1 << 10).translate(0))
    }

    func testThirtyTwoBitPaging4MPage() throws {
        entries[0x1000 + 1 * 4] = 0x0080_0000 | 0x83
        let w = walker(cr3: 0x1000, cr4: 0, efer: 0)
        XCTAssertEqual(try w.translate(0x40_0000 + 0x10), 0x80_0010)
    }
}
