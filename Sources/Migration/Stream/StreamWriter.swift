import Glibc
import Machine
import SystemSupport

/// Encodes the stream described in StreamFormat.swift onto a socket, feeding the digest with
/// every byte in order. Control records collect in a small buffer; RAM batches go out with one
/// vectored write.
///
/// While the guest runs, a page can change between hashing it and the kernel copying it, and
/// the digest would no longer match what was sent (the page is resent later, being dirty, but
/// the digest cannot tell). So a running guest's pages are first copied into one bounce
/// buffer (one memcpy per page, no allocations), and the copy is hashed and sent. With the
/// guest paused (`pagesAreStable`) the vectors point straight into guest memory. Measured on
/// 896 MiB of data (release build): copying costs about as much as hashing, each well under
/// the kernel's own copy into the socket; the copy is kept, the scan is folded into it.
/// The batch's header is put right in front of the copied pages, so the batch leaves in one
/// contiguous write: TLS encrypts it from there, with no second copy into a staging buffer.
final class StreamWriter {
    private let socket: MigrationStream
    private var buffer: [UInt8] = []
    private var digest = StreamDigest()
    private let vectors: UnsafeMutableBufferPointer<iovec>
    private var bounce: UnsafeMutableRawPointer?
    /// Room in front of the bounce buffer's pages for what `buffer` holds (the batch header and
    /// any small records before it).
    private static let bounceHeaderRoom = 64 * 1024
    /// True once the guest can no longer write its RAM (switchover).
    var pagesAreStable = false
    /// Bytes put on the wire so far (`transferred ram` counts these).
    private(set) var bytesWritten: UInt64 = 0
    /// Set by `startCompression`: batches whose pages shrink go as zstd frames.
    private var compressor: BatchCompressor?
    /// Replaceable so tests can compress regardless of the link.
    var compressionPolicy = CompressionPolicy()
    /// How compression went so far.
    private(set) var compression = CompressionCounts()

    init(socket: MigrationStream) {
        self.socket = socket
        buffer.reserveCapacity(64 * 1024)
        // One vector for the batch header plus at most one per run of normal pages.
        vectors = .allocate(capacity: StreamFormat.maxBatchPages + 1)
        digest.isOn = !socket.isEncrypted
    }

    deinit {
        vectors.deallocate()
        bounce?.deallocate()
    }

    /// Where copied pages go; `bounceHeaderRoom` bytes before it belong to the same allocation.
    private var bounceBuffer: UnsafeMutableRawPointer {
        if let existing = bounce { return existing + Self.bounceHeaderRoom }
        let created = UnsafeMutableRawPointer.allocate(byteCount: Self.bounceHeaderRoom + StreamFormat.maxBatchPages * GuestRAMRegion.pageSize,
                                                       alignment: GuestRAMRegion.pageSize)
        bounce = created
        return created + Self.bounceHeaderRoom
    }

    func writeHeader() {
        buffer += StreamFormat.magic
        put16(StreamFormat.version.major)
        put16(StreamFormat.version.minor)
    }

    func writeLayout(_ layout: MachineLayout) {
        put8(StreamFormat.Tag.layout.rawValue)
        put32(UInt32(truncatingIfNeeded: layout.ramRegions.count))
        for region in layout.ramRegions {
            put64(region.guestAddress)
            put64(region.size)
        }
        put32(UInt32(truncatingIfNeeded: layout.vcpuCount))
        put32(UInt32(truncatingIfNeeded: layout.devices.count))
        for device in layout.devices { putName(device) }
    }

    var isCompressing: Bool { compressor != nil }

    /// multifd-compression zstd: the RAM coding record, after which batches may go compressed
    /// (StreamFormat.swift). Must come right after the layout. False when libzstd could not
    /// make its context: the stream stays plain, which every destination reads.
    func startCompression(level: Int) -> Bool {
        guard let created = BatchCompressor(level: level) else { return false }
        compressor = created
        put8(StreamFormat.Tag.ramCoding.rawValue)
        put8(StreamFormat.RAMCoding.zstd.rawValue)
        return true
    }

    func writePassEnd(_ pass: Int) {
        put8(StreamFormat.Tag.passEnd.rawValue)
        put32(UInt32(truncatingIfNeeded: pass))
    }

    func writeState(_ section: StateSection) throws {
        guard section.bytes.count <= StreamFormat.maxSectionBytes,
              (1...StreamFormat.maxNameBytes).contains(section.name.utf8.count) else {
            throw MigrationError.stateSectionTooLarge(name: section.name, bytes: section.bytes.count)
        }
        put8(StreamFormat.Tag.state.rawValue)
        putName(section.name)
        put32(section.version)
        put32(UInt32(section.bytes.count))
        buffer += section.bytes
        if buffer.count >= 256 * 1024 { try flush() }
    }

    /// The shared RAM record, sent with `descriptor` (the memfd) attached to its first byte.
    func writeSharedRAM(offsets: [Int], descriptor: Int32) throws {
        try flush()
        put8(StreamFormat.Tag.sharedRAM.rawValue)
        put32(UInt32(truncatingIfNeeded: offsets.count))
        for offset in offsets { put64(UInt64(offset)) }
        digest.update(buffer)
        try buffer.withUnsafeBytes { try socket.writeAll($0, passing: descriptor, operation: "handing over guest RAM") }
        bytesWritten += UInt64(buffer.count)
        buffer.removeAll(keepingCapacity: true)
    }

    /// A record of `tag`, region index u32, count u32 and `words` (mapped-ram's page maps and
    /// page digests, MappedRAMFormat.swift).
    func writeWords(tag: UInt8, region: Int, _ words: [UInt64]) throws {
        put8(tag)
        put32(UInt32(truncatingIfNeeded: region))
        put32(UInt32(truncatingIfNeeded: words.count))
        for word in words {
            put64(word)
            if buffer.count >= 256 * 1024 { try flush() }
        }
    }

    /// Writes the end marker and the digest of everything before it, then flushes.
    func writeEnd() throws {
        put8(StreamFormat.Tag.end.rawValue)
        digest.update(buffer)
        var value = (digest.isOn ? digest.value : 0).littleEndian
        withUnsafeBytes(of: &value) { buffer += $0 }
        try sendBuffer()
    }

    /// One RAM batch: `kinds[i]` says what page `firstPage + i` of the region is. While the
    /// guest runs, each `.normal` page is copied into the bounce buffer and checked for zeros
    /// there, in one pass while it is in the L1 cache (scanning guest memory first and
    /// copying later missed the cache twice per page); a page whose copy is all zero becomes
    /// `.zero` in `kinds`. With the guest paused the caller has already found the zero pages.
    /// Returns the bytes it put on the wire.
    @discardableResult
    func writeBatch(region: Int, firstPage: Int, kinds: UnsafeMutableBufferPointer<UInt8>,
                    regionBase: UnsafeMutableRawPointer) throws -> Int {
        let before = bytesWritten + UInt64(buffer.count)
        let pageSize = GuestRAMRegion.pageSize
        let normal = StreamFormat.PageKind.normal.rawValue
        var vectorCount = 1
        var payloadBytes = 0
        if !pagesAreStable {
            let copy = bounceBuffer
            for index in 0..<kinds.count where kinds[index] == normal {
                // SAFETY: the caller built `kinds` for pages inside this region, and at most
                // maxBatchPages pages go into the bounce buffer, which holds that many.
                let slot = copy + payloadBytes
                slot.copyMemory(from: regionBase + (firstPage + index) * pageSize, byteCount: pageSize)
                if isZeroPage(slot) {
                    kinds[index] = StreamFormat.PageKind.zero.rawValue
                } else {
                    payloadBytes += pageSize
                }
            }
            if payloadBytes > 0 {
                vectors[1] = iovec(iov_base: copy, iov_len: payloadBytes)
                vectorCount = 2
            }
        } else {
            var index = 0
            while index < kinds.count {
                guard kinds[index] == normal else { index += 1; continue }
                let runStart = index
                while index < kinds.count && kinds[index] == normal { index += 1 }
                // SAFETY: the caller built `kinds` for pages inside this region, so the run lies in guest RAM.
                let source = regionBase + (firstPage + runStart) * pageSize
                let length = (index - runStart) * pageSize
                vectors[vectorCount] = iovec(iov_base: source, iov_len: length)
                vectorCount += 1
                payloadBytes += length
            }
        }
        if payloadBytes > 0, let compressor {
            let now = MonotonicClock.nanoseconds()
            if compressionPolicy.shouldTry(backlog: socket.unsentBytes, written: bytesWritten, now: now, plainBytes: payloadBytes) {
                let frameLength = compressor.compress(UnsafeBufferPointer(rebasing: vectors[1..<vectorCount]), plainBytes: payloadBytes)
                compressionPolicy.record(shrank: frameLength != nil, plainBytes: payloadBytes,
                                         nanoseconds: MonotonicClock.nanoseconds() - now)
                if let frameLength {
                    try writeCompressed(region: region, firstPage: firstPage, kinds: kinds, compressor: compressor, frameLength: frameLength)
                    let wire = bytesWritten - before
                    compression.batches += 1
                    compression.pages += UInt64(payloadBytes / pageSize)
                    compression.frameBytes += UInt64(frameLength)
                    compression.wireBytes += wire
                    return Int(wire)
                }
                compression.didNotShrink += 1
            } else {
                compression.notTried += 1
            }
        }
        put8(StreamFormat.Tag.ramBatch.rawValue)
        put32(UInt32(region))
        put64(UInt64(firstPage))
        put32(UInt32(kinds.count))
        buffer.append(contentsOf: kinds)
        if vectorCount == 2 && !pagesAreStable && buffer.count <= Self.bounceHeaderRoom {
            try writeInFrontOfBounce(payloadBytes: payloadBytes)
            return Int(bytesWritten - before)
        }
        digest.update(buffer)
        for i in 1..<vectorCount {
            digest.update(UnsafeRawBufferPointer(start: vectors[i].iov_base, count: vectors[i].iov_len))
        }
        try buffer.withUnsafeMutableBytes { header in
            vectors[0] = iovec(iov_base: header.baseAddress, iov_len: header.count)
            try socket.writeAll(vectors: UnsafeMutableBufferPointer(rebasing: vectors[0..<vectorCount]),
                                operation: "sending RAM")
        }
        bytesWritten += UInt64(buffer.count + payloadBytes)
        buffer.removeAll(keepingCapacity: true)
        return Int(bytesWritten - before)
    }

    /// A compressed batch: its header goes right in front of the frame, so both leave in one write.
    private func writeCompressed(region: Int, firstPage: Int, kinds: UnsafeMutableBufferPointer<UInt8>,
                                 compressor: BatchCompressor, frameLength: Int) throws {
        put8(StreamFormat.Tag.compressedBatch.rawValue)
        put32(UInt32(region))
        put64(UInt64(firstPage))
        put32(UInt32(kinds.count))
        buffer.append(contentsOf: kinds)
        put32(UInt32(frameLength))
        if buffer.count > BatchCompressor.headerRoom { try flush() }
        let start = compressor.frame - buffer.count
        // SAFETY: buffer.count <= headerRoom, so `start` lies in the compressor's allocation,
        // and the frame after it holds `frameLength` bytes.
        buffer.withUnsafeBytes { header in
            if header.count > 0 { start.copyMemory(from: header.baseAddress!, byteCount: header.count) }
        }
        let wire = UnsafeRawBufferPointer(start: start, count: buffer.count + frameLength)
        digest.update(wire)
        try socket.writeAll(wire, operation: "sending RAM")
        bytesWritten += UInt64(wire.count)
        buffer.removeAll(keepingCapacity: true)
    }

    /// Sends `buffer` and the first `payloadBytes` of the bounce buffer as one run of bytes,
    /// copying `buffer` into the room just before the pages.
    private func writeInFrontOfBounce(payloadBytes: Int) throws {
        let pages = bounceBuffer
        let start = pages - buffer.count
        // SAFETY: buffer.count <= bounceHeaderRoom, so `start` is inside the bounce allocation,
        // and the pages after it hold `payloadBytes` copied bytes.
        buffer.withUnsafeBytes { header in start.copyMemory(from: header.baseAddress!, byteCount: header.count) }
        let wire = UnsafeRawBufferPointer(start: start, count: buffer.count + payloadBytes)
        digest.update(wire)
        try socket.writeAll(wire, operation: "sending RAM")
        bytesWritten += UInt64(wire.count)
        buffer.removeAll(keepingCapacity: true)
    }

    /// The postcopy switchover record (StreamFormat.swift): which pages are still only here.
    func writePostcopy(id: UInt64, missing: [[UInt64]]) throws {
        put8(StreamFormat.Tag.postcopy.rawValue)
        put64(id)
        for bitmap in missing {
            put32(UInt32(bitmap.count))
            for word in bitmap { put64(word) }
            if buffer.count >= 256 * 1024 { try flush() }
        }
    }

    /// A recovery connection's opening: the header, then the migration it resumes.
    func writePostcopyResume(id: UInt64) throws {
        writeHeader()
        put8(StreamFormat.Tag.postcopyResume.rawValue)
        put64(id)
        try sendBuffer()
    }

    /// `count` pages from `firstPage` of a region, sent at once (PostcopyProtocol.swift); the
    /// guest is paused here, so the vector points straight into its memory. Not digested: the
    /// digest ended with the end marker.
    func writePostcopyPages(region: Int, firstPage: Int, count: Int, regionBase: UnsafeMutableRawPointer) throws {
        put8(StreamFormat.Tag.postcopyPages.rawValue)
        put32(UInt32(region))
        put64(UInt64(firstPage))
        put32(UInt32(count))
        let length = count * GuestRAMRegion.pageSize
        try buffer.withUnsafeMutableBytes { header in
            vectors[0] = iovec(iov_base: header.baseAddress, iov_len: header.count)
            // SAFETY: the caller checked firstPage + count <= the region's page count.
            vectors[1] = iovec(iov_base: regionBase + firstPage * GuestRAMRegion.pageSize, iov_len: length)
            try socket.writeAll(vectors: UnsafeMutableBufferPointer(rebasing: vectors[0..<2]), operation: "sending postcopy pages")
        }
        bytesWritten += UInt64(buffer.count + length)
        buffer.removeAll(keepingCapacity: true)
    }

    func writePostcopyEnd() throws {
        put8(StreamFormat.Tag.postcopyEnd.rawValue)
        try sendBuffer()
    }

    func flush() throws {
        digest.update(buffer)
        try sendBuffer()
    }

    private func sendBuffer() throws {
        try buffer.withUnsafeBytes { try socket.writeAll($0, operation: "sending the migration stream") }
        bytesWritten += UInt64(buffer.count)
        buffer.removeAll(keepingCapacity: true)
    }

    private func put8(_ value: UInt8) { buffer.append(value) }
    private func put16(_ value: UInt16) { var v = value.littleEndian; withUnsafeBytes(of: &v) { buffer += $0 } }
    private func put32(_ value: UInt32) { var v = value.littleEndian; withUnsafeBytes(of: &v) { buffer += $0 } }
    private func put64(_ value: UInt64) { var v = value.littleEndian; withUnsafeBytes(of: &v) { buffer += $0 } }
    private func putName(_ name: String) {
        let bytes = Array(name.utf8.prefix(StreamFormat.maxNameBytes))
        put16(UInt16(bytes.count))
        buffer += bytes
    }
}

