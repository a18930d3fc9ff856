import Glibc
import Machine

/// What travels after the end marker of a postcopy stream (StreamFormat.swift has the
/// `postcopy` record that starts it). Both directions carry many messages at once now: the
/// source pushes pages while the destination asks for the ones its vCPUs are waiting for.
///
/// Source to destination:
///
///     pages      tag 0x07, region index u32, first page u64, count u32 (1...64), then the
///                4096 bytes of each page
///     end        tag 0x08: every page the `postcopy` record listed has been sent
///     On a recovery connection (`migrate -r`), before any pages: the header ("SKVM", major,
///     minor), then resume: tag 0x09, migration id u64 (the `postcopy` record's)
///
/// Destination to source:
///
///     resumed    tag 0x14: the guest runs on the destination (the source's downtime ends)
///     request    tag 0x12, region index u32, page u64: a vCPU waits for this page; it jumps
///                the queue of pages still to push
///     missing    tag 0x13, per region: word count u32 ((pages + 63) / 64), words u64: the
///                answer to resume, the pages the destination still lacks
///     ack        tag 0x10: every page arrived; the migration is complete
///     error      tag 0x11, as before the end marker
///
/// The bytes after the end marker are not covered by its digest; each record is checked
/// against the local layout before it is used, and a page outside guest RAM is refused.
enum PostcopyProtocol {
    static let maxPagesPerRecord = 64

    enum Reply: Equatable {
        case ack
        case error(String)
        case resumed
        case pageRequest(region: Int, page: Int)
        case missingPages([[UInt64]])
    }

    static func wordCount(pages: Int) -> Int { (pages + 63) / 64 }

    /// Reads one reply of the destination; `pageCounts` is the local layout, which every
    /// index and bitmap is checked against.
    static func readReply(from socket: MigrationStream, pageCounts: [Int]) throws -> Reply {
        let operation = "reading the destination's postcopy requests"
        var tag: UInt8 = 0
        try socket.readExact(into: &tag, count: 1, operation: operation)
        switch StreamFormat.ReplyTag(rawValue: tag) {
        case .ack: return .ack
        case .resumed: return .resumed
        case .error:
            return .error(try ReturnPath.readErrorMessage(from: socket, operation: operation))
        case .pageRequest:
            var region: UInt32 = 0, page: UInt64 = 0
            try socket.readExact(into: &region, count: 4, operation: operation)
            try socket.readExact(into: &page, count: 8, operation: operation)
            let index = Int(UInt32(littleEndian: region)), number = UInt64(littleEndian: page)
            guard index < pageCounts.count, number < UInt64(pageCounts[index]) else {
                let pages = index < pageCounts.count ? "\(pageCounts[index]) pages" : "no such region; the machine has \(pageCounts.count)"
                throw MigrationError.malformedStream("the destination asked for page \(number) of RAM region \(index) (\(pages)), outside guest RAM")
            }
            return .pageRequest(region: index, page: Int(number))
        case .missingPages:
            var bitmaps: [[UInt64]] = []
            for (index, pages) in pageCounts.enumerated() {
                var words: UInt32 = 0
                try socket.readExact(into: &words, count: 4, operation: operation)
                let count = Int(UInt32(littleEndian: words))
                guard count == wordCount(pages: pages) else {
                    throw MigrationError.malformedStream("the destination's missing-page bitmap for RAM region \(index) has \(count) words; the region needs \(wordCount(pages: pages))")
                }
                var bitmap = [UInt64](repeating: 0, count: count)
                if count > 0 {
                    try bitmap.withUnsafeMutableBytes { try socket.readExact(into: $0.baseAddress!, count: count * 8, operation: operation) }
                }
                bitmaps.append(clearingBitsPastTheEnd(bitmap.map { UInt64(littleEndian: $0) }, pages: pages))
            }
            return .missingPages(bitmaps)
        case nil:
            throw MigrationError.malformedStream("the destination answered with unknown tag 0x\(String(tag, radix: 16)) during postcopy")
        }
    }

    static func request(region: Int, page: Int) -> [UInt8] {
        var bytes: [UInt8] = [StreamFormat.ReplyTag.pageRequest.rawValue]
        append(UInt32(region), to: &bytes)
        append(UInt64(page), to: &bytes)
        return bytes
    }

    static func missing(_ bitmaps: [[UInt64]]) -> [UInt8] {
        var bytes: [UInt8] = [StreamFormat.ReplyTag.missingPages.rawValue]
        for bitmap in bitmaps {
            append(UInt32(bitmap.count), to: &bytes)
            for word in bitmap { append(word, to: &bytes) }
        }
        return bytes
    }

    static func append<T: FixedWidthInteger>(_ value: T, to bytes: inout [UInt8]) {
        var little = value.littleEndian
        withUnsafeBytes(of: &little) { bytes += $0 }
    }

    /// Reads the `postcopy` record's body (after its tag) from the main stream.
    static func readSwitchover(_ reader: StreamReader, pageCounts: [Int]) throws -> (id: UInt64, missing: [[UInt64]]) {
        reader.context = "reading the postcopy switchover"
        let id = try reader.readU64()
        var bitmaps: [[UInt64]] = []
        for (index, pages) in pageCounts.enumerated() {
            let count = Int(try reader.readU32())
            guard count == wordCount(pages: pages) else {
                throw MigrationError.malformedStream("the postcopy bitmap for RAM region \(index) has \(count) words; the region needs \(wordCount(pages: pages))")
            }
            var bitmap: [UInt64] = []
            bitmap.reserveCapacity(count)
            for _ in 0..<count { bitmap.append(try reader.readU64()) }
            bitmaps.append(clearingBitsPastTheEnd(bitmap, pages: pages))
        }
        return (id, bitmaps)
    }

    /// Bits past a region's last page name no page: a peer may set them, and a sender walking
    /// the bitmap would read past the region's mapping. Cleared, so counts stay true too.
    static func clearingBitsPastTheEnd(_ bitmap: [UInt64], pages: Int) -> [UInt64] {
        var bitmap = bitmap
        if pages % 64 != 0, let last = bitmap.indices.last { bitmap[last] &= (1 << UInt64(pages % 64)) - 1 }
        return bitmap
    }
}
