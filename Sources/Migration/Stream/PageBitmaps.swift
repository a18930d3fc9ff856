/// Page bitmaps as migration keeps them: one `[UInt64]` per RAM region, bit `i` of word `w` is
/// page `64 * w + i`. KVM's dirty log, a pass's selection, postcopy's missing pages and a
/// mapped-ram file's page maps all have this shape. Sets of them may be ragged: a region or a
/// word past the end of one set reads as zero, so an empty set is "no pages".
enum PageBitmaps {
    /// Pages set in one region's bitmap.
    static func count(_ words: [UInt64]) -> Int {
        words.reduce(0) { $0 + $1.nonzeroBitCount }
    }

    /// Pages set in all regions.
    static func count(_ bitmaps: [[UInt64]]) -> Int {
        bitmaps.reduce(0) { $0 + count($1) }
    }

    /// Pages set in either set, without building their union.
    static func countUnion(_ first: [[UInt64]], _ second: [[UInt64]]) -> Int {
        (0..<max(first.count, second.count)).reduce(0) { total, region in
            let a = region < first.count ? first[region] : [], b = region < second.count ? second[region] : []
            return (0..<max(a.count, b.count)).reduce(total) { $0 + (word(a, $1) | word(b, $1)).nonzeroBitCount }
        }
    }

    /// Region `region` of `first | second`, `words` words long.
    static func union(_ first: [[UInt64]], _ second: [[UInt64]], region: Int, words: Int) -> [UInt64] {
        let a = region < first.count ? first[region] : [], b = region < second.count ? second[region] : []
        return (0..<words).map { word(a, $0) | word(b, $0) }
    }

    /// `first | second` for `regions` regions, region `r` being `words(r)` words long.
    static func union(_ first: [[UInt64]], _ second: [[UInt64]], regions: Int, words: (Int) -> Int) -> [[UInt64]] {
        (0..<regions).map { union(first, second, region: $0, words: words($0)) }
    }

    @inline(__always)
    private static func word(_ words: [UInt64], _ index: Int) -> UInt64 { index < words.count ? words[index] : 0 }
}
