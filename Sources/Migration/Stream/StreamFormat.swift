import Machine

/// The swiftkvm migration stream, version 2.0. Every integer is little-endian.
///
/// Source to destination:
///
///     header     "SKVM" (4 bytes), major u16, minor u16
///     layout     tag 0x01, region count u32 (1...64), per region: guest address u64, size u64
///                (a multiple of 4 KiB); vCPU count u32 (<= 1024); device count u32 (<= 256), per
///                device: name length u16 (<= 256), UTF-8 name
///     shared RAM (only with x-ignore-shared over unix:, once, right after the layout)
///                tag 0x0A, region count u32 (= the layout's), per region: offset u64 in the memfd
///                that travels with this record's first byte (SCM_RIGHTS); the destination maps it
///                in place of its own RAM, and no RAM batches follow
///     RAM coding (only with multifd-compression zstd, once, right after the layout, since 1.5)
///                tag 0x0B, coding u8 (1 = zstd): compressed batches may follow
///     then, any number of times:
///     RAM batch  tag 0x02, region index u32, first page u64, page count u32 (1...1024),
///                one kind byte per page (0 = not in this batch, 1 = zero page, 2 = normal page),
///                then the 4096 bytes of each normal page in page order; zero pages carry no payload
///     compressed RAM batch (only after a RAM coding record)
///                tag 0x0C, region index u32, first page u64, page count u32 (1...1024), one
///                kind byte per page as above, frame length u32 (less than the normal pages'
///                bytes), then one zstd frame that decompresses to exactly the normal pages'
///                bytes in page order; a reader caps zstd's window at 4 MiB and trusts no
///                size the frame claims
///     pass end   tag 0x03, pass number u32 (1, 2, 3, ... without gaps)
///     then, after the last pass:
///     state      tag 0x04, name length u16 (1...256), UTF-8 name, version u32, length u32
///                (<= 1 MiB), bytes; at most 4096 sections and 64 MiB of state in all
///                One section, `run-state`, is the migration's own (RunStateSection.swift): the
///                guest's run state when switchover began, so a stopped guest arrives stopped
///                A section's version is its owner's, not the stream's: devices' in DeviceState.swift,
///                the vCPUs' and the VM's in Machine+Migration.swift (vCPU version 2 added the MTRRs)
///     end        tag 0x05, digest u64: XXH3-64 (seed 0; XXH64 in 1.x streams) of every stream
///                byte before the digest; 0 and unchecked over TLS (since 1.4), where every
///                record's AEAD tag already authenticates the bytes
///
/// Postcopy (only with the `postcopy-ram` capability on both sides): the last pass is replaced
/// by one record, after which state and end follow as above and the guest runs on the
/// destination at once (PostcopyProtocol.swift has the records that come after the end):
///
///     postcopy   tag 0x06, migration id u64, then per layout region: word count u32 (exactly
///                (pages + 63) / 64), words u64: bit i set = page i is still only on the source
///
/// Every page of every region must arrive at least once (as data or as a zero page) before
/// the end marker; pass 1 sends all of RAM. A destination refuses a stream that left any out.
///
/// Destination to source (the return path), exactly one message:
///
///     ack        tag 0x10: everything arrived and loaded; the guest runs there (or waits, -S)
///     error      tag 0x11, length u32 (<= 4096), UTF-8 message: the destination refused or failed
///
/// The stream is untrusted (anyone may connect to `-incoming`): a reader checks every index,
/// count and length against its own machine before using it, and allocates nothing sized by
/// an unchecked value. A reader refuses a newer major version, naming both; a minor version
/// bump may only add what older readers of the same major version can do without.
///
/// History: 2.0 replaced the digest's XXH64 by XXH3-64, four times faster here (StreamDigest.swift);
/// nothing else changed. A new major version, because a 1.x reader would have hashed the whole
/// stream the old way and refused it only at its end, after loading everything, as corrupt;
/// this way it refuses at the header, naming both versions. A 2.0 reader takes every 1.x
/// stream (and snapshot file) by 1.x's rules. 1.5 added compressed RAM batches (records 0x0B and 0x0C), sent only when the user
/// turns on multifd with multifd-compression zstd; the coding record comes before any RAM, so
/// an older reader refuses such a stream by its tag at once (the source then says the
/// destination predates compression), and a stream without it is 1.4's. 1.4 stopped hashing streams carried by TLS (the digest is 0 there). This breaks
/// the minor-version rule for one case only: a 1.3 destination with tls-creds refuses a 1.4
/// TLS stream as a digest mismatch (1.3's TLS was never released). 1.3 added the shared RAM
/// record (tag 0x0A), sent only when the user turns x-ignore-shared on with memfd RAM over
/// unix:; an older reader refuses it by its tag, which is right: it cannot map memory it was
/// not given. 1.2 added postcopy (records 0x06-0x09, replies 0x12-0x14), sent only when the
/// user turned postcopy on; 1.1 added the `run-state` section; a 1.1 reader takes 1.0 streams
/// (their guest counts as running). 1.0 readers predate any release and refuse the section
/// by name.
/// A snapshot file can also be in the mapped-ram layout (MappedRAMFormat.swift).
enum StreamFormat {
    static let magic: [UInt8] = Array("SKVM".utf8)
    static let version = StreamVersion(major: 2, minor: 0)
    /// The oldest version this swiftkvm reads.
    static let oldestReadable = StreamVersion(major: 1, minor: 0)
    /// From this version on the end marker's digest is XXH3-64, before it XXH64.
    static let xxh3Digest = StreamVersion(major: 2, minor: 0)
    /// From this version on a TLS stream carries no digest.
    static let unhashedOverTLS = StreamVersion(major: 1, minor: 4)

    static let maxRegions = 64
    static let maxVCPUs = MachineConfiguration.maxVCPUCount
    static let maxDevices = 256
    static let maxNameBytes = 256
    static let maxBatchPages = 1024
    static let maxSectionBytes = 1 << 20
    static let maxSections = 4096
    static let maxTotalStateBytes = 64 << 20
    static let maxErrorMessageBytes = 4096

    enum Tag: UInt8 {
        case layout = 0x01
        case ramBatch = 0x02
        case passEnd = 0x03
        case state = 0x04
        case end = 0x05
        case postcopy = 0x06
        case postcopyPages = 0x07
        case postcopyEnd = 0x08
        case postcopyResume = 0x09
        case sharedRAM = 0x0A
        case ramCoding = 0x0B
        case compressedBatch = 0x0C
    }

    /// How a RAM coding record says batches may be coded.
    enum RAMCoding: UInt8 {
        case zstd = 1
    }

    enum PageKind: UInt8 {
        case skipped = 0
        case zero = 1
        case normal = 2
    }

    enum ReplyTag: UInt8 {
        case ack = 0x10
        case error = 0x11
        case pageRequest = 0x12
        case missingPages = 0x13
        case resumed = 0x14
    }
}

public struct StreamVersion: Comparable, Sendable, CustomStringConvertible {
    public var major: UInt16
    public var minor: UInt16
    public var description: String { "\(major).\(minor)" }

    public static func < (a: StreamVersion, b: StreamVersion) -> Bool { (a.major, a.minor) < (b.major, b.minor) }
}
