import Machine

/// Which pages a pass sends: all of RAM (the first pass), a dirty bitmap per region, or the
/// union of two (the switchover: pages still pending plus those dirtied since, read as one
/// without building a merged copy).
enum PageSelection {
    case all
    case dirty([[UInt64]])
    case union([[UInt64]], [[UInt64]])
}

/// Manual dirty-log protection: a pass re-arms the log for each chunk of its selection just
/// before it reads the chunk's first page, so a write the guest makes after the read is
/// logged and one made before it is not sent twice (MigratableMachine.rearmDirtyLog).
struct DirtyLogRearm {
    let chunkPages: Int
    let rearm: (_ region: Int, _ firstPage: Int, _ pageCount: Int, _ bitmap: ArraySlice<UInt64>) throws -> Void
}

/// What one pass put on the wire.
struct PassCounts {
    var pages = 0
    var zeroPages = 0
    var bytes: UInt64 = 0
}

/// Turns a page selection into RAM batches: finds zero pages (untouched host pages without
/// reading them, the others by scanning), groups up to
/// `batchPages` neighbouring pages per batch, and writes each batch with one vectored write.
/// Between batches it honours the bandwidth limit, cancellation and an early error from the
/// destination.
final class PageSender {
    /// Pages per batch: 128 (512 KiB), not the format's limit of 1024. A running guest's
    /// pages are copied into the bounce buffer and then hashed; at 4 MiB the copy has left the
    /// 2 MiB L2 cache before the hash reads it. Measured (release, copy then XXH64 of 512 MiB
    /// of random pages, best of 4 on this machine): 3.7-4.2 GB/s at 1024 pages, 4.6-5.5 at 256,
    /// 4.8-5.5 at 128, 4.6-4.7 at 32, where per-batch costs begin to show.
    static let batchPages = 128

    private let writer: PageSink
    private let regions: [GuestRAMRegion]
    private let kinds = UnsafeMutableBufferPointer<UInt8>.allocate(capacity: StreamFormat.maxBatchPages)
    private let residency = PageResidency()
    var limiter: BandwidthLimiter
    /// Called between batches; throws to stop the pass (cancel, destination error).
    private let checkpoint: () throws -> Void
    private let shouldStop: () -> Bool
    /// Called after each batch with its counts, for live statistics.
    private let progress: (PassCounts) -> Void

    init(writer: PageSink, regions: [GuestRAMRegion], limiter: BandwidthLimiter,
         checkpoint: @escaping () throws -> Void, shouldStop: @escaping () -> Bool,
         progress: @escaping (PassCounts) -> Void) {
        self.writer = writer; self.regions = regions; self.limiter = limiter
        self.checkpoint = checkpoint; self.shouldStop = shouldStop; self.progress = progress
    }

    deinit { kinds.deallocate() }

    /// How far the current `send` has got: every selected page before (region, page) is sent.
    private(set) var position = (region: 0, page: 0)

    /// Where the current `send` re-arms the dirty log (nil: collecting did it), and the next
    /// chunk of the current region still to re-arm.
    private var rearming: (rearm: DirtyLogRearm, selection: PageSelection)?
    private var nextRearmChunk = 0

    /// Sends `selection`; with `rearm`, each chunk's log is re-armed before its pages are read.
    /// The switchover's union is sent with the guest paused and needs none.
    func send(_ selection: PageSelection, rearm: DirtyLogRearm? = nil) throws -> PassCounts {
        position = (0, 0)
        if case .union = selection { rearming = nil } else { rearming = rearm.map { ($0, selection) } }
        defer { rearming = nil }
        var total = PassCounts()
        for (index, region) in regions.enumerated() {
            nextRearmChunk = 0
            switch selection {
            case .all:
                var page = 0
                while page < region.pageCount {
                    let count = min(Self.batchPages, region.pageCount - page)
                    for i in 0..<count { kinds[i] = StreamFormat.PageKind.normal.rawValue }
                    try sendBatch(region: index, firstPage: page, count: count, total: &total)
                    page += count
                }
            case .dirty(let bitmaps):
                guard index < bitmaps.count else { continue }
                try sendDirty(region: index, bitmap: bitmaps[index], or: [], total: &total)
            case .union(let first, let second):
                try sendDirty(region: index, bitmap: index < first.count ? first[index] : [],
                              or: index < second.count ? second[index] : [], total: &total)
            }
        }
        return total
    }

    /// Re-arms every chunk of `region` up to the one holding `lastPage` that the selection
    /// touches, before any of their pages is read (the residency check included).
    private func rearmThrough(region index: Int, lastPage: Int) throws {
        guard let (rearm, selection) = rearming else { return }
        let pageCount = regions[index].pageCount
        while nextRearmChunk * rearm.chunkPages <= lastPage {
            let first = nextRearmChunk * rearm.chunkPages
            nextRearmChunk += 1
            let count = min(rearm.chunkPages, pageCount - first)
            let words = (count + 63) / 64
            let bitmap: ArraySlice<UInt64>
            switch selection {
            case .all:
                bitmap = ArraySlice(repeating: .max, count: words)
            case .dirty(let bitmaps):
                let selected = index < bitmaps.count ? bitmaps[index] : []
                let start = first / 64, end = min(start + words, selected.count)
                guard start < end, selected[start..<end].contains(where: { $0 != 0 }) else { continue }
                bitmap = end - start == words ? selected[start..<end]
                    : ArraySlice(selected[start..<end] + [UInt64](repeating: 0, count: words - (end - start)))
            case .union:
                return  // never set for it (send)
            }
            try rearm.rearm(index, first, count, bitmap)
        }
    }

    /// Sends the pages set in `bitmap` or in `other` (either may be shorter, even empty).
    private func sendDirty(region index: Int, bitmap: [UInt64], or other: [UInt64], total: inout PassCounts) throws {
        let pageCount = regions[index].pageCount
        var batchStart = -1
        var batchEnd = 0
        for wordIndex in 0..<max(bitmap.count, other.count) {
            let word = (wordIndex < bitmap.count ? bitmap[wordIndex] : 0) | (wordIndex < other.count ? other[wordIndex] : 0)
            if word == 0 { continue }
            var bits = word
            while bits != 0 {
                let page = wordIndex * 64 + bits.trailingZeroBitCount
                bits &= bits - 1
                guard page < pageCount else { break }
                if batchStart >= 0 && page - batchStart >= Self.batchPages {
                    try sendBatch(region: index, firstPage: batchStart, count: batchEnd - batchStart, total: &total)
                    batchStart = -1
                }
                if batchStart < 0 {
                    batchStart = page
                    batchEnd = page
                }
                while batchEnd < page {
                    kinds[batchEnd - batchStart] = StreamFormat.PageKind.skipped.rawValue
                    batchEnd += 1
                }
                kinds[page - batchStart] = StreamFormat.PageKind.normal.rawValue
                batchEnd = page + 1
            }
        }
        if batchStart >= 0 {
            try sendBatch(region: index, firstPage: batchStart, count: batchEnd - batchStart, total: &total)
        }
    }

    /// `kinds[0..<count]` holds `.normal` for selected pages; zero pages are found here
    /// (untouched host pages, and all pages when the guest is paused) or by the writer as it
    /// copies them.
    private func sendBatch(region index: Int, firstPage: Int, count: Int, total: inout PassCounts) throws {
        try checkpoint()
        try rearmThrough(region: index, lastPage: firstPage + count - 1)
        let region = regions[index]
        let pageSize = GuestRAMRegion.pageSize
        let normal = StreamFormat.PageKind.normal.rawValue
        let zero = StreamFormat.PageKind.zero.rawValue
        var batch = PassCounts()
        // SAFETY: firstPage + count <= region.pageCount, so every page below lies in the region's mapping.
        let batchStart = region.host + firstPage * pageSize
        let residencyKnown = region.untouchedPagesReadAsZero && residency.load(host: batchStart, count: count)
        let scanHere = writer.pagesAreStable
        for i in 0..<count where kinds[i] == normal {
            batch.pages += 1
            if (residencyKnown && residency.isUntouched(i)) || (scanHere && isZeroPage(batchStart + i * pageSize)) {
                kinds[i] = zero
            }
        }
        let bytes = try writer.writeBatch(region: index, firstPage: firstPage,
                                          kinds: UnsafeMutableBufferPointer(rebasing: kinds[0..<count]),
                                          regionBase: region.host)
        for i in 0..<count where kinds[i] == zero { batch.zeroPages += 1 }
        batch.bytes = UInt64(bytes)
        total.pages += batch.pages
        total.zeroPages += batch.zeroPages
        total.bytes += batch.bytes
        position = (index, firstPage + count)
        progress(batch)
        limiter.account(batch.bytes, shouldStop: shouldStop)
    }
}

extension PageSelection {
    /// The selected pages at or after `position` (a `PageSender` cut short there), one
    /// bitmap per region.
    func remaining(from position: (region: Int, page: Int), regions: [GuestRAMRegion]) -> [[UInt64]] {
        regions.indices.map { index in
            let pageCount = regions[index].pageCount
            let words = (pageCount + 63) / 64
            guard index >= position.region else { return [UInt64](repeating: 0, count: words) }
            var bitmap: [UInt64]
            switch self {
            case .all:
                bitmap = [UInt64](repeating: .max, count: words)
                if pageCount % 64 != 0 { bitmap[words - 1] = (1 << UInt64(pageCount % 64)) - 1 }
            case .dirty(let bitmaps):
                bitmap = PageBitmaps.union(bitmaps, [], region: index, words: words)
            case .union(let first, let second):
                bitmap = PageBitmaps.union(first, second, region: index, words: words)
            }
            if index == position.region {
                for page in 0..<min(position.page, pageCount) { bitmap[page >> 6] &= ~(1 << UInt64(page & 63)) }
            }
            return bitmap
        }
    }
}
