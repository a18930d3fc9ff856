import SystemSupport
import Machine

/// The mapped-ram snapshot file, version 1.0 (QEMU 9.0's mapped-ram idea): every guest page
/// has its own place in the file, so a page written in several passes is there once, a zero
/// page is a hole that takes no disk space, and a restore can map the file instead of reading
/// it. Written by `migrate file:PATH` with the `mapped-ram` capability on; `-incoming
/// file:PATH` recognises it by its magic (the capability need not be set there). Every
/// integer is little-endian.
///
///     header   at offset 0, one 4 KiB page (the rest of it zero):
///              "SKMR" (4 bytes), major u16, minor u16, RAM offset u64 (4096), RAM length u64
///              (the guest's RAM size), trailer offset u64 (= RAM offset + RAM length), trailer
///              length u64, header digest u64: XXH64 (seed 0) of the 48 bytes before it
///     RAM      at the RAM offset: region after region, in layout order, page after page;
///              page p of region r lies at RAM offset + (sizes of regions before r) + p * 4096.
///              A page not in the file is a hole and reads as zero.
///     trailer  at the trailer offset, to the end of the file: a migration stream
///              (StreamFormat.swift) without RAM batches or pass ends: its header, the layout,
///              then for every region exactly once, in any order,
///                 page map      tag 0x20, region u32, word count u32 (= ceil(pages / 64)),
///                               u64 words: bit p of word p/64 set = page p holds data
///                 page digests  tag 0x21, region u32, count u32 (= pages set in the map),
///                               XXH64 of each such page, in page order
///              then the state sections and `run-state`, and the end record with the digest of
///              every trailer byte before it (the algorithm its stream header's version names).
///
/// The file is written in place through a temporary file (SnapshotFile): pages go to their
/// places while pre-copy runs, the trailer and then the header at the end, so a file without a
/// valid header never appears under the snapshot's name.
///
/// Checks on restore, before the guest can run: magic, version, header digest, offsets and the
/// file's size (a truncated file is refused), the trailer's digest, layout, page maps, digest
/// counts and state. Page contents are checked against their digests when the restore reads
/// the whole file first (`-mem-prealloc`); a mapped restore reads pages only as the guest
/// touches them, so it cannot, as with Firecracker's memory files.
///
/// Versions: a reader refuses a newer major version, naming both; a minor version may only add
/// what older readers of the same major version can do without. 1.0 is the first; its reader
/// refuses trailer records it does not know, by tag. A snapshot in the stream format (files
/// saved without mapped-ram, or before it existed) starts with "SKVM" and is read as before.
enum MappedRAMFormat {
    static let magic: [UInt8] = Array("SKMR".utf8)
    static let version = StreamVersion(major: 1, minor: 0)
    static let headerBytes = 48
    static let ramOffset = 4096

    enum Tag: UInt8 {
        case pageMap = 0x20
        case pageDigests = 0x21
    }

    /// Trailer bound for a guest of `ramBytes`: maps, one digest per page, the stream's
    /// state limit, and room for the layout.
    static func maxTrailerBytes(ramBytes: UInt64) -> UInt64 {
        let pages = ramBytes / UInt64(GuestRAMRegion.pageSize)
        return pages / 8 + pages * 8 + UInt64(StreamFormat.maxTotalStateBytes) + UInt64(StreamFormat.maxSections) * 512 + (1 << 20)
    }

    struct Header: Equatable {
        var version: StreamVersion
        var ramOffset: UInt64
        var ramLength: UInt64
        var trailerOffset: UInt64
        var trailerLength: UInt64

        func encoded() -> [UInt8] {
            var bytes = MappedRAMFormat.magic
            func put<T: FixedWidthInteger>(_ value: T) { withUnsafeBytes(of: value.littleEndian) { bytes += $0 } }
            put(version.major); put(version.minor)
            put(ramOffset); put(ramLength); put(trailerOffset); put(trailerLength)
            put(MappedRAMFormat.digest(bytes))
            return bytes
        }

        /// Decodes and checks the header of `bytes` (the file's first `headerBytes` + 8 at
        /// least); throws a `what` for snapshotCorrupt, or `.newerVersion`.
        static func decode(_ bytes: [UInt8]) throws -> Header {
            func u16(_ at: Int) -> UInt16 { UInt16(bytes[at]) | UInt16(bytes[at + 1]) << 8 }
            func u64(_ at: Int) -> UInt64 { (0..<8).reduce(0) { $0 | UInt64(bytes[at + $1]) << (8 * UInt64($1)) } }
            guard bytes.count >= MappedRAMFormat.headerBytes, Array(bytes[0..<4]) == MappedRAMFormat.magic else {
                throw MigrationError.notAMigrationStream
            }
            let header = Header(version: StreamVersion(major: u16(4), minor: u16(6)), ramOffset: u64(8), ramLength: u64(16),
                                trailerOffset: u64(24), trailerLength: u64(32))
            guard header.version.major <= MappedRAMFormat.version.major else {
                throw MigrationError.newerVersion(stream: header.version, supported: MappedRAMFormat.version)
            }
            guard u64(40) == MappedRAMFormat.digest(Array(bytes[0..<40])) else {
                throw MappedRAMError("its header does not match its digest")
            }
            guard header.version.major == MappedRAMFormat.version.major else {
                throw MappedRAMError("format version \(header.version) is older than any this swiftkvm reads (\(MappedRAMFormat.version))")
            }
            guard header.ramOffset == UInt64(MappedRAMFormat.ramOffset), header.ramLength % UInt64(GuestRAMRegion.pageSize) == 0,
                  header.ramLength <= LayoutCheck.maxRAMBytes, header.trailerOffset == header.ramOffset + header.ramLength,
                  header.trailerLength <= MappedRAMFormat.maxTrailerBytes(ramBytes: header.ramLength) else {
                throw MappedRAMError("its header describes an impossible layout (RAM at \(header.ramOffset)+\(header.ramLength), trailer at \(header.trailerOffset)+\(header.trailerLength))")
            }
            return header
        }
    }

    /// XXH64, as mapped-ram 1.0 defined it (stream 2.0's XXH3 did not change this format).
    static func digest(_ bytes: [UInt8]) -> UInt64 {
        let digest = StreamDigest(.xxh64)
        bytes.withUnsafeBytes { digest.update($0) }
        return digest.value
    }

    static func pageDigest(_ page: UnsafeRawPointer) -> UInt64 {
        let digest = StreamDigest(.xxh64)
        digest.update(UnsafeRawBufferPointer(start: page, count: GuestRAMRegion.pageSize))
        return digest.value
    }

    /// Where each region's pages start in the file.
    static func regionOffsets(_ sizes: [Int]) -> [Int] {
        var offsets: [Int] = []
        var next = ramOffset
        for size in sizes {
            offsets.append(next)
            next += size
        }
        return offsets
    }
}

/// Why a mapped-ram file is refused; the restore words it with the file's path.
struct MappedRAMError: Error {
    let what: String
    init(_ what: String) { self.what = what }
}
