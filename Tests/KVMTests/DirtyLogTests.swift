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
}
