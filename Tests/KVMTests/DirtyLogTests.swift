import CKVM
import Glibc
@testable import KVM
import XCTest

/// KVM_GET_DIRTY_LOG on a real VM. Migration reuses its bitmaps from sync to sync without
/// clearing them, which is sound only because the call overwrites every word of the slot's
/// bitmap; these tests hold KVM to that.
final class DirtyLogTests: XCTestCase {
    /// Real-mode `mov byte [page * 0x1000], value` for each page, then `hlt`.
    private static func writes(pages: [UInt16], value: UInt8) -> [UInt8] {
        pages.flatMap { RealModeGuest.storeByte(value, at: $0 * 0x1000) } + RealModeGuest.hlt
    }

    private func runToHalt(_ vcpu: VCPU, at entry: UInt64) throws {
        try RealModeGuest.runToHalt(vcpu, at: entry)
    }

    /// Bits set in `bitmap`, as page numbers.
    private func pages(_ bitmap: [UInt64]) -> [Int] {
        bitmap.indices.flatMap { word in (0..<64).filter { bitmap[word] & (1 << UInt64($0)) != 0 }.map { word * 64 + $0 } }
    }

    func testGuestWritesAppearOnceAndAStaleBufferIsOverwrittenInFull() throws {
        let memory = try GuestMemory(layout: [(0, 1 << 20)])
        let region = memory.regions[0]
        let vm = try KVMSystem().createVM()
        try vm.setMemoryRegion(region, logDirtyPages: true)
        let vcpu = try vm.createVCPU(id: 0)
        // The VMM's own writes are not in KVM's log.
        try memory.write(0x1000, bytes: Self.writes(pages: [2, 5, 9], value: 1))
        try memory.write(0x1100, bytes: Self.writes(pages: [5], value: 2))

        try runToHalt(vcpu, at: 0x1000)
        let words = (region.size / 4096 + 63) / 64
        // Stale contents, as a reused buffer has: every bit must come from KVM.
        var bitmap = [UInt64](repeating: ~0, count: words)
        try vm.fetchDirtyLog(slot: region.slot, into: &bitmap)
        XCTAssertEqual(pages(bitmap), [2, 5, 9])

        bitmap = [UInt64](repeating: ~0, count: words)
        try vm.fetchDirtyLog(slot: region.slot, into: &bitmap)
        XCTAssertEqual(pages(bitmap), [], "the previous call cleared the log, and nothing was written since")

        try runToHalt(vcpu, at: 0x1100)
        bitmap = [UInt64](repeating: ~0, count: words)
        try vm.fetchDirtyLog(slot: region.slot, into: &bitmap)
        XCTAssertEqual(pages(bitmap), [5], "a page written again after a sync is reported again")
        XCTAssertEqual(try memory.read(0x5000, count: 1), [2])
    }

    /// Manual protect with INITIALLY_SET, as migration uses it: logging starts with every page
    /// dirty, reading the log leaves it as it is, and only clearing a page makes KVM log its
    /// next write.
    func testManualProtectStartsAllDirtyAndLogsOnlyPagesClearedBeforeTheWrite() throws {
        let memory = try GuestMemory(layout: [(0, 1 << 20)])
        let region = memory.regions[0]
        let vm = try KVMSystem().createVM()
        XCTAssertTrue(vm.enableManualDirtyLogProtect(), "this KVM offers no manual dirty-log protection")
        try vm.setMemoryRegion(region, logDirtyPages: true)
        let vcpu = try vm.createVCPU(id: 0)
        try memory.write(0x1000, bytes: Self.writes(pages: [2, 5, 9], value: 1))
        let pageCount = region.size / 4096, words = (pageCount + 63) / 64
        var bitmap = [UInt64](repeating: 0, count: words)
        try vm.fetchDirtyLog(slot: region.slot, into: &bitmap)
        XCTAssertEqual(pages(bitmap), Array(0..<pageCount), "logging starts with every page dirty")

        // Pages 0-63 are re-armed, the rest stay dirty; 2, 5 and 9 written after it are logged
        // (page 1, the guest's code, is only read).
        try vm.clearDirtyLog(slot: region.slot, firstPage: 0, pageCount: 64, bitmap: [.max])
        try runToHalt(vcpu, at: 0x1000)
        for _ in 0..<2 {
            bitmap = [UInt64](repeating: 0, count: words)
            try vm.fetchDirtyLog(slot: region.slot, into: &bitmap)
            XCTAssertEqual(pages(bitmap), [2, 5, 9] + Array(64..<pageCount), "reading the log leaves it as it is")
        }
        // The last chunk may end at the slot's end without being a multiple of 64.
        try vm.clearDirtyLog(slot: region.slot, firstPage: 0, pageCount: pageCount, bitmap: ArraySlice(repeating: .max, count: words))
        bitmap = [UInt64](repeating: ~0, count: words)
        try vm.fetchDirtyLog(slot: region.slot, into: &bitmap)
        XCTAssertEqual(pages(bitmap), [])
    }
}
