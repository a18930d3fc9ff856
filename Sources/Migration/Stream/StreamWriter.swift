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
    private let digest = StreamDigest()
    private let vectors: UnsafeMutableBufferPointer<iovec>
    private var bounce: UnsafeMutableRawPointer?
    /// Room in front of the bounce buffer's pages for what `buffer` holds (the batch header and
    /// any small records before it).
    private static let bounceHeaderRoom = 64 * 1024
    /// True once the guest can no longer write its RAM (switchover).
    var pagesAreStable = false
    /// Bytes put on the wire so far (`transferred ram` counts these).
    private(set) var bytesWritten: UInt64 = 0
    /// Set by `startCompression`: batches whose pages shrink go as zstd frames, compressed on
    /// the pool's threads and written back here in order.
    private var pool: CompressionPool?
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
        pool?.stop()
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

    var isCompressing: Bool { pool != nil }

    /// multifd-compression zstd: the RAM coding record, after which batches may go compressed
    /// (StreamFormat.swift), on up to `threads` threads. Must come right after the layout.
    /// False when libzstd could not make its contexts or a thread could not start.
    func startCompression(level: Int, threads: Int = 1) -> Bool {
        guard let created = CompressionPool(threads: threads, level: level) else { return false }
        pool = created
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
        try drainCompressed()
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
        let pageSize = GuestRAMRegion.pageSize
        let normal = StreamFormat.PageKind.normal.rawValue
        if let pool {
            let wrote = bytesWritten
            if try submitCompressed(pool, region: region, firstPage: firstPage, kinds: kinds, regionBase: regionBase) {
                return Int(bytesWritten - wrote)
            }
            try drainCompressed()
        }
        let before = bytesWritten + UInt64(buffer.count)
        var vectorCount = 1
        var payloadBytes = 0
        if !pagesAreStable {
            let copy = bounceBuffer
            payloadBytes = Self.copyNormalPages(kinds, firstPage: firstPage, from: regionBase, into: copy, findingZeroPages: true)
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

    /// Copies the batch's normal pages into a free slot (finding zero pages as the bounce copy
    /// does) and hands it to a compression thread, when the policy says the link has time for
    /// it. False: the batch goes plain (the policy said no, or it holds only zero pages).
    private func submitCompressed(_ pool: CompressionPool, region: Int, firstPage: Int,
                                  kinds: UnsafeMutableBufferPointer<UInt8>, regionBase: UnsafeMutableRawPointer) throws -> Bool {
        let pageSize = GuestRAMRegion.pageSize
        let normal = StreamFormat.PageKind.normal.rawValue
        let normalPages = kinds.reduce(0) { $0 + ($1 == normal ? 1 : 0) }
        guard normalPages > 0 else { return false }
        switch compressionPolicy.decide(backlog: socket.unsentBytes, written: bytesWritten,
                                        now: MonotonicClock.nanoseconds(), plainBytes: normalPages * pageSize) {
        case .tryIt: break
        case .linkKeepsUp:
            compression.notTried += 1
            return false
        case .notASample:
            compression.notSampled += 1
            return false
        }
        let slot = try pool.freeSlot { try writeSlot($0) }
        // A paused guest's zero pages were found by the sender already.
        let payloadBytes = Self.copyNormalPages(kinds, firstPage: firstPage, from: regionBase, into: slot.pages,
                                                findingZeroPages: !pagesAreStable)
        guard payloadBytes > 0 else {
            pool.giveBack(slot)
            return false
        }
        slot.plainBytes = payloadBytes
        slot.prefix = buffer
        buffer.removeAll(keepingCapacity: true)
        slot.region = region
        slot.firstPage = firstPage
        slot.kinds = Array(kinds)
        pool.submit(slot)
        return true
    }

    /// Copies the batch's normal pages one after another to `destination` (which holds
    /// maxBatchPages pages) and returns the bytes copied; with `findingZeroPages`, a page that
    /// turns out zero in the copy is marked so in `kinds` instead of kept. The copy is what is
    /// sent and digested, so a running guest's later writes cannot make the two differ.
    private static func copyNormalPages(_ kinds: UnsafeMutableBufferPointer<UInt8>, firstPage: Int,
                                        from regionBase: UnsafeMutableRawPointer, into destination: UnsafeMutableRawPointer,
                                        findingZeroPages: Bool) -> Int {
        let pageSize = GuestRAMRegion.pageSize
        var copied = 0
        for index in 0..<kinds.count where kinds[index] == StreamFormat.PageKind.normal.rawValue {
            // SAFETY: the caller built `kinds` for pages inside this region, and at most
            // maxBatchPages pages go to `destination`, which holds that many.
            let page = destination + copied
            page.copyMemory(from: regionBase + (firstPage + index) * pageSize, byteCount: pageSize)
            if findingZeroPages && isZeroPage(page) {
                kinds[index] = StreamFormat.PageKind.zero.rawValue
            } else {
                copied += pageSize
            }
        }
        return copied
    }

    /// Writes every batch still with the compression threads, in order; before anything else
    /// goes on the wire.
    private func drainCompressed() throws {
        guard let pool, pool.hasInFlight else { return }
        try pool.drain { try writeSlot($0) }
    }

    /// One compressed slot's batch, after the records buffered before it: as a zstd frame with
    /// its header right in front (one write), or plain when the frame was not clearly smaller.
    private func writeSlot(_ slot: CompressionPool.Slot) throws {
        compressionPolicy.record(shrank: slot.frameLength != nil, plainBytes: slot.plainBytes, nanoseconds: slot.nanoseconds)
        var header = slot.prefix
        header.reserveCapacity(header.count + 32 + slot.kinds.count)
        let put = { (value: UInt64, bytes: Int) in withUnsafeBytes(of: value.littleEndian) { header += $0.prefix(bytes) } }
        header.append((slot.frameLength == nil ? StreamFormat.Tag.ramBatch : StreamFormat.Tag.compressedBatch).rawValue)
        put(UInt64(slot.region), 4)
        put(UInt64(slot.firstPage), 8)
        put(UInt64(slot.kinds.count), 4)
        header += slot.kinds
        let before = bytesWritten
        guard let frameLength = slot.frameLength else {
            compression.didNotShrink += 1
            try writeRun(header: header, payload: UnsafeRawBufferPointer(start: slot.pages, count: slot.plainBytes))
            return
        }
        put(UInt64(frameLength), 4)
        try writeRun(header: header, payload: UnsafeRawBufferPointer(start: slot.compressor.frame, count: frameLength),
                     room: BatchCompressor.headerRoom)
        compression.batches += 1
        compression.pages += UInt64(slot.plainBytes / GuestRAMRegion.pageSize)
        compression.frameBytes += UInt64(frameLength)
        compression.wireBytes += bytesWritten - before
    }

    /// `header`, then `payload`: in one write from just before `payload` when `room` bytes in
    /// front of it are free and enough, else in two. Both are digested in order.
    private func writeRun(header: [UInt8], payload: UnsafeRawBufferPointer, room: Int = 0) throws {
        guard let base = payload.baseAddress, payload.count > 0 else {
            digest.update(header)
            try header.withUnsafeBytes { try socket.writeAll($0, operation: "sending RAM") }
            bytesWritten += UInt64(header.count)
            return
        }
        if header.count <= room {
            let start = UnsafeMutableRawPointer(mutating: base) - header.count
            // SAFETY: the caller owns `room` bytes before `payload` in the same allocation.
            header.withUnsafeBytes { start.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
            let wire = UnsafeRawBufferPointer(start: start, count: header.count + payload.count)
            digest.update(wire)
            try socket.writeAll(wire, operation: "sending RAM")
            bytesWritten += UInt64(wire.count)
            return
        }
        try header.withUnsafeBytes { bytes in
            digest.update(bytes)
            digest.update(payload)
            vectors[0] = iovec(iov_base: UnsafeMutableRawPointer(mutating: bytes.baseAddress), iov_len: bytes.count)
            vectors[1] = iovec(iov_base: UnsafeMutableRawPointer(mutating: base), iov_len: payload.count)
            try socket.writeAll(vectors: UnsafeMutableBufferPointer(rebasing: vectors[0..<2]), operation: "sending RAM")
        }
        bytesWritten += UInt64(header.count + payload.count)
    }

    /// Sends `buffer` and the first `payloadBytes` of the bounce buffer as one run of bytes,
    /// copying `buffer` into the room just before the pages.
    private func writeInFrontOfBounce(payloadBytes: Int) throws {
        // The bounce buffer keeps bounceHeaderRoom bytes free before its pages.
        try writeRun(header: buffer, payload: UnsafeRawBufferPointer(start: bounceBuffer, count: payloadBytes),
                     room: Self.bounceHeaderRoom)
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
        try drainCompressed()
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
        try drainCompressed()
        digest.update(buffer)
        try sendBuffer()
    }

    private func sendBuffer() throws {
        try drainCompressed()
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

