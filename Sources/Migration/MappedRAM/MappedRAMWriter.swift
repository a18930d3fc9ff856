import SystemSupport
import Glibc
import Machine

/// Writes a mapped-ram snapshot (MappedRAMFormat.swift) into a SnapshotFile's temporary file:
/// each page at its own offset with pwrite, a page that turned zero punched out again, and at
/// the end the trailer and the header. Keeps, per page, whether the file holds it and its
/// digest (8 bytes a page: 8 MiB for a 4 GiB guest).
final class MappedRAMWriter: PageSink {
    private let file: ReplacementFile
    private let regionSizes: [Int]
    private let offsets: [Int]
    private var present: [[UInt64]]
    private var digests: [[UInt64]]
    private let bounce: UnsafeMutableRawPointer
    var pagesAreStable = false
    private(set) var bytesWritten: UInt64 = 0

    init(file: ReplacementFile, regions: [GuestRAMRegion]) throws {
        self.file = file
        regionSizes = regions.map(\.size)
        offsets = MappedRAMFormat.regionOffsets(regionSizes)
        present = regions.map { [UInt64](repeating: 0, count: ($0.pageCount + 63) / 64) }
        digests = regions.map { [UInt64](repeating: 0, count: $0.pageCount) }
        bounce = .allocate(byteCount: StreamFormat.maxBatchPages * GuestRAMRegion.pageSize, alignment: GuestRAMRegion.pageSize)
        guard file.isRegularFile else {
            bounce.deallocate()
            throw MigrationError.unsupportedCombination("mapped-ram needs a regular file: \(file.path) is not one")
        }
        do {
            try file.resize(to: MappedRAMFormat.ramOffset + regionSizes.reduce(0, +))
        } catch let failure as ReplacementFile.Failure {
            bounce.deallocate()
            throw MigrationError.snapshotFile(path: file.path, action: "write", errno: failure.errno)
        }
    }

    deinit { bounce.deallocate() }

    func writePassEnd(_ pass: Int) {}
    func flush() throws {}

    @discardableResult
    func writeBatch(region: Int, firstPage: Int, kinds: UnsafeMutableBufferPointer<UInt8>,
                    regionBase: UnsafeMutableRawPointer) throws -> Int {
        let pageSize = GuestRAMRegion.pageSize
        let normal = StreamFormat.PageKind.normal.rawValue, zero = StreamFormat.PageKind.zero.rawValue
        // While the guest runs, each page is copied once: its digest and the file get the same bytes.
        var copied = 0
        if !pagesAreStable {
            for index in 0..<kinds.count where kinds[index] == normal {
                // SAFETY: the caller built `kinds` for pages inside this region; at most
                // maxBatchPages pages go into the bounce buffer, which holds that many.
                let slot = bounce + copied * pageSize
                slot.copyMemory(from: regionBase + (firstPage + index) * pageSize, byteCount: pageSize)
                if isZeroPage(slot) { kinds[index] = zero } else { copied += 1 }
            }
        }
        var written = 0
        var bounceIndex = 0
        var index = 0
        do {
            while index < kinds.count {
                let page = firstPage + index
                if kinds[index] == zero {
                    if isPresent(region, page) {
                        try file.zero(at: offsets[region] + page * pageSize, length: pageSize)
                        present[region][page >> 6] &= ~(1 << UInt64(page & 63))
                    }
                    index += 1
                    continue
                }
                guard kinds[index] == normal else { index += 1; continue }
                let runStart = index
                while index < kinds.count && kinds[index] == normal { index += 1 }
                let count = index - runStart
                // SAFETY: the run lies in this region (stable) or in the bounce buffer's filled part.
                let source = pagesAreStable ? UnsafeRawPointer(regionBase + (firstPage + runStart) * pageSize)
                                            : UnsafeRawPointer(bounce + bounceIndex * pageSize)
                for i in 0..<count {
                    let p = page + i
                    digests[region][p] = MappedRAMFormat.pageDigest(source + i * pageSize)
                    present[region][p >> 6] |= 1 << UInt64(p & 63)
                }
                try file.write(UnsafeRawBufferPointer(start: source, count: count * pageSize),
                               at: offsets[region] + page * pageSize)
                bounceIndex += pagesAreStable ? 0 : count
                written += count * pageSize
            }
        } catch let failure as ReplacementFile.Failure {
            throw MigrationError.snapshotFile(path: file.path, action: "write", errno: failure.errno)
        }
        bytesWritten += UInt64(written)
        return written
    }

    private func isPresent(_ region: Int, _ page: Int) -> Bool {
        present[region][page >> 6] & (1 << UInt64(page & 63)) != 0
    }

    /// After the last pass: the trailer (layout, page maps, digests, state), then the header.
    func finish(layout: MachineLayout, sections: [StateSection]) throws {
        let trailerOffset = MappedRAMFormat.ramOffset + regionSizes.reduce(0, +)
        guard lseek(file.fd, off_t(trailerOffset), SEEK_SET) >= 0 else {
            throw MigrationError.snapshotFile(path: file.path, action: "write", errno: errno)
        }
        let trailer = StreamWriter(socket: MigrationStream(readFD: -1, writeFD: fcntl(file.fd, F_DUPFD_CLOEXEC, 3)))
        trailer.writeHeader()
        trailer.writeLayout(layout)
        for region in regionSizes.indices {
            try trailer.writeWords(tag: MappedRAMFormat.Tag.pageMap.rawValue, region: region, present[region])
            var kept: [UInt64] = []
            for (page, digest) in digests[region].enumerated() where isPresent(region, page) { kept.append(digest) }
            try trailer.writeWords(tag: MappedRAMFormat.Tag.pageDigests.rawValue, region: region, kept)
        }
        for section in sections { try trailer.writeState(section) }
        try trailer.writeEnd()
        let header = MappedRAMFormat.Header(
            version: MappedRAMFormat.version, ramOffset: UInt64(MappedRAMFormat.ramOffset),
            ramLength: UInt64(regionSizes.reduce(0, +)), trailerOffset: UInt64(trailerOffset),
            trailerLength: trailer.bytesWritten).encoded()
        do {
            try header.withUnsafeBytes { try file.write($0, at: 0) }
        } catch let failure as ReplacementFile.Failure {
            throw MigrationError.snapshotFile(path: file.path, action: "write", errno: failure.errno)
        }
        bytesWritten += trailer.bytesWritten + UInt64(header.count)
    }
}
