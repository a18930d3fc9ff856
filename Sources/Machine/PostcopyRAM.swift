import Glibc
import KVM

/// Guest RAM while a postcopy migration fills it: pages still on the source are dropped here
/// and every region is registered with a userfaultfd, so a vCPU (or any thread) touching a
/// missing page waits until `place` puts it in. The only place that knows how missing pages
/// are trapped; the migration layer decides which pages are missing and where they come from.
///
/// Guest RAM is a private anonymous mapping (GuestMemory): MADV_DONTNEED makes a page missing
/// again, and a page the host never backed is missing too, though it is valid (zero) guest
/// memory; `fillZero` resolves a fault on such a page.
public final class PostcopyRAM: @unchecked Sendable {
    public let regions: [GuestRAMRegion]
    private let faults: UserFault
    private let zeroPage: UnsafeMutableRawPointer
    private var registered = false

    public enum Failure: Error, CustomStringConvertible {
        case userfaultfd(String)
        public var description: String {
            switch self {
            case .userfaultfd(let reason): return "userfaultfd: \(reason)"
            }
        }
    }

    /// Drops the pages set in `missing` (one bitmap per region, bit i = page i) and registers
    /// all of RAM for missing-page faults. Call with the guest paused.
    public init(regions: [GuestRAMRegion], missing: [[UInt64]]) throws {
        // MADV_DONTNEED makes a page missing only in private anonymous memory: on a memfd or a
        // mapped snapshot file the old contents would come back, and the guest would run on them.
        guard regions.allSatisfy(\.untouchedPagesReadAsZero) else {
            throw Failure.userfaultfd("postcopy needs private anonymous guest RAM on the destination; start it without memory-backend-memfd")
        }
        self.regions = regions
        zeroPage = .allocate(byteCount: GuestRAMRegion.pageSize, alignment: GuestRAMRegion.pageSize)
        zeroPage.initializeMemory(as: UInt8.self, repeating: 0, count: GuestRAMRegion.pageSize)
        do {
            faults = try UserFault()
        } catch {
            zeroPage.deallocate()
            throw Failure.userfaultfd("\(error)")
        }
        for (index, region) in regions.enumerated() where index < missing.count {
            Self.forEachRun(missing[index], pageCount: region.pageCount) { first, count in
                // SAFETY: first + count <= pageCount, so the range lies inside the region's mapping.
                _ = madvise(region.host + first * GuestRAMRegion.pageSize, count * GuestRAMRegion.pageSize, MADV_DONTNEED)
            }
        }
        do {
            for region in regions { try faults.registerMissing(region.host, length: region.size) }
            registered = true
        } catch {
            finish()
            throw Failure.userfaultfd("\(error)")
        }
    }

    deinit {
        finish()
        zeroPage.deallocate()
    }

    /// Readable when a fault is pending.
    public var pollDescriptor: Int32 { faults.rawValue }

    /// The next faulting page as (region, page), skipping addresses outside guest RAM; nil when
    /// none is pending.
    public func nextFault() throws -> (region: Int, page: Int)? {
        while let address = try faults.nextFault() {
            for (index, region) in regions.enumerated() {
                let start = UInt(bitPattern: region.host)
                if address >= start && address < start + UInt(region.size) {
                    return (index, Int(address - start) / GuestRAMRegion.pageSize)
                }
            }
        }
        return nil
    }

    /// Puts `bytes` (one page) in place and wakes whoever waits on it; false when the page was
    /// already there. `region` and `page` must lie inside guest RAM (the caller checked).
    @discardableResult
    public func place(region: Int, page: Int, from bytes: UnsafeRawPointer) throws -> Bool {
        try place(region: region, firstPage: page, count: 1, from: bytes) > 0
    }

    /// Puts `count` pages from `bytes` in place from `firstPage` on, in one UFFDIO_COPY where
    /// none of them is there yet, and wakes whoever waits on them; returns how many were placed
    /// (a page already there keeps what it has). The run must lie inside guest RAM (the caller
    /// checked).
    @discardableResult
    public func place(region: Int, firstPage: Int, count: Int, from bytes: UnsafeRawPointer) throws -> Int {
        // SAFETY: the caller checked firstPage + count <= pageCount of `region`.
        let target = regions[region].host + firstPage * GuestRAMRegion.pageSize
        do {
            return try faults.copy(to: target, from: bytes, length: count * GuestRAMRegion.pageSize,
                                   pageSize: GuestRAMRegion.pageSize) / GuestRAMRegion.pageSize
        } catch {
            throw Failure.userfaultfd("\(error)")
        }
    }

    /// Resolves a fault on a valid page the host never backed: it reads as zero.
    public func fillZero(region: Int, page: Int) throws {
        if try !place(region: region, page: page, from: zeroPage) {
            // Filled meanwhile: the waiter may still sleep.
            // SAFETY: as in `place`.
            try? faults.wake(regions[region].host + page * GuestRAMRegion.pageSize, length: GuestRAMRegion.pageSize)
        }
    }

    /// Wakes whoever waits on a page that is already in place.
    public func wake(region: Int, page: Int) {
        // SAFETY: the caller checked page < pageCount of `region`.
        try? faults.wake(regions[region].host + page * GuestRAMRegion.pageSize, length: GuestRAMRegion.pageSize)
    }

    /// Every page has arrived: RAM is ordinary memory again.
    public func finish() {
        guard registered else { return }
        registered = false
        for region in regions { try? faults.unregister(region.host, length: region.size) }
    }

    /// Calls `body(first, count)` for each run of set bits below `pageCount`.
    public static func forEachRun(_ bitmap: [UInt64], pageCount: Int, _ body: (Int, Int) -> Void) {
        var runStart = -1
        for page in 0..<min(pageCount, bitmap.count * 64) {
            let set = bitmap[page >> 6] & (1 << UInt64(page & 63)) != 0
            if set && runStart < 0 { runStart = page }
            if !set && runStart >= 0 { body(runStart, page - runStart); runStart = -1 }
        }
        if runStart >= 0 { body(runStart, min(pageCount, bitmap.count * 64) - runStart) }
    }
}
