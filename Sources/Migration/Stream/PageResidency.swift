import Glibc
import Machine

/// Which pages of a guest RAM mapping the host has never backed, from /proc/self/pagemap
/// (8 bytes per page: bit 63 present, bit 62 swapped). Only for regions whose backing is private
/// anonymous memory (`GuestRAMRegion.untouchedPagesReadAsZero`; callers check it): there a page
/// that is neither present nor swapped has never been written and reads as zero, so the zero-page
/// scan can skip it. In a memfd or a mapped snapshot file such a page holds the file's data. On an
/// idle 1 GiB guest that is almost all of RAM, and scanning it cost ~50 ms per side.
///
/// A page found untouched may be written right afterwards; that is the same race the zero
/// scan already has, and the dirty log (or the VMM's own write log) sends the page again.
/// When pagemap cannot be read every page counts as touched, which only costs speed.
final class PageResidency {
    private static let present: UInt64 = 1 << 63
    private static let swapped: UInt64 = 1 << 62
    private let fd: Int32
    private let entries: UnsafeMutablePointer<UInt64>
    private let capacity: Int

    init(capacity: Int = StreamFormat.maxBatchPages) {
        fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC)
        self.capacity = capacity
        entries = .allocate(capacity: capacity)
    }

    deinit {
        if fd >= 0 { close(fd) }
        entries.deallocate()
    }

    /// Reads the entries of `count` (<= capacity) pages from `host`; false when unknown.
    func load(host: UnsafeRawPointer, count: Int) -> Bool {
        guard fd >= 0, count <= capacity else { return false }
        let bytes = count * MemoryLayout<UInt64>.size
        let offset = off_t(UInt(bitPattern: host) / UInt(GuestRAMRegion.pageSize)) * off_t(MemoryLayout<UInt64>.size)
        // SAFETY: `entries` holds `capacity` >= count entries.
        return pread(fd, entries, bytes, offset) == bytes
    }

    /// Page `index` of the last `load` has never been backed (so it reads as zero).
    func isUntouched(_ index: Int) -> Bool {
        entries[index] & (Self.present | Self.swapped) == 0
    }
}

extension PageResidency {
    /// Clears from `bitmap` (one region's pages, mapped at `host`) every page the host never
    /// backed, and returns those pages as a bitmap of the same length. For postcopy's
    /// switchover, with the guest paused: such a page reads as zero here and so it does on the
    /// destination (it was never sent there as anything but zero). Pushing them would send
    /// 4 KiB of zeros per page.
    func clearUntouched(in bitmap: inout [UInt64], host: UnsafeRawPointer, pageCount: Int) -> [UInt64] {
        var cleared = [UInt64](repeating: 0, count: bitmap.count)
        var first = 0
        // Whole words per chunk, so that a word's pages are all in one load.
        let chunk = capacity & ~63
        while first < pageCount && first / 64 < bitmap.count && chunk > 0 {
            let count = min(chunk, pageCount - first)
            let words = (first / 64)..<min((first + count + 63) / 64, bitmap.count)
            defer { first += count }
            // SAFETY: pages first..<first+count lie inside the region's mapping at `host`.
            guard bitmap[words].contains(where: { $0 != 0 }), load(host: host + first * GuestRAMRegion.pageSize, count: count) else { continue }
            for word in words {
                var bits = bitmap[word]
                while bits != 0 {
                    let page = word * 64 + bits.trailingZeroBitCount
                    bits &= bits - 1
                    guard page < first + count, isUntouched(page - first) else { continue }
                    bitmap[word] &= ~(1 << UInt64(page & 63))
                    cleared[word] |= 1 << UInt64(page & 63)
                }
            }
        }
        return cleared
    }
}
