import Machine

/// Which guest pages the stream has delivered (as data or as a zero marker), one bit per
/// page. Fresh destination RAM reads as zero, so a page the stream never mentions would run
/// as zero: the guest may run only once every page has arrived at least once. Pass 1 of a
/// swiftkvm source covers all of RAM, so only a broken or hostile stream fails this.
/// 1 bit per 4 KiB page: 2 MiB for a 64 GiB guest.
struct ReceivedPages {
    private var bitmaps: [[UInt64]]
    private let pageCounts: [Int]

    init(regions: [GuestRAMRegion]) {
        pageCounts = regions.map(\.pageCount)
        bitmaps = pageCounts.map { [UInt64](repeating: 0, count: ($0 + 63) / 64) }
    }

    /// Whether any page has arrived.
    var any: Bool { bitmaps.contains { $0.contains { $0 != 0 } } }

    /// Records page `page` of region `region` (both already checked against the layout).
    mutating func mark(region: Int, page: Int) {
        bitmaps[region][page >> 6] |= 1 << UInt64(page & 63)
    }

    /// Records a run of pages a word at a time: pass 1 marks every page of RAM, and bit by bit
    /// that cost the destination a measurable part of the downtime of large idle guests.
    mutating func mark(region: Int, pages: Range<Int>) {
        var page = pages.lowerBound
        while page < pages.upperBound {
            let bit = page & 63
            let bits = min(64 - bit, pages.upperBound - page)
            let mask: UInt64 = bits == 64 ? .max : ((1 << UInt64(bits)) - 1) << UInt64(bit)
            bitmaps[region][page >> 6] |= mask
            page += bits
        }
    }

    /// The first region with missing pages: its index, how many it misses, the first missing one.
    func firstGap() -> (region: Int, missing: Int, firstPage: Int)? {
        for (region, words) in bitmaps.enumerated() {
            let count = pageCounts[region]
            var missing = 0
            var first: Int?
            for (index, word) in words.enumerated() {
                let valid = min(64, count - index * 64)
                let mask: UInt64 = valid == 64 ? .max : (1 << UInt64(valid)) - 1
                let absent = ~word & mask
                guard absent != 0 else { continue }
                missing += absent.nonzeroBitCount
                if first == nil { first = index * 64 + absent.trailingZeroBitCount }
            }
            if let first { return (region, missing, first) }
        }
        return nil
    }
}
