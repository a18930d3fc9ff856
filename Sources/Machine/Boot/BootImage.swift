import KVM

/// What a machine boots, and how the image is put into fresh RAM.
public enum BootSource: Equatable, Sendable {
    /// An ELF with a PVH entry note, and its command line (-kernel, -append).
    case pvh(path: String, commandLine: String)
    /// A 512-byte boot sector entered in real mode at 0000:7c00 (-drive file=IMG,format=raw).
    case bootSector(path: String)
}

/// A parsed image, ready to be copied into guest RAM (again, on every reset).
struct BootImage {
    enum Kind {
        case pvh(ELFImage, commandLine: String)
        case bootSector
    }
    let kind: Kind
    let bytes: [UInt8]
    let path: String

    static let maxImageSize = 256 << 20
    static let startInfoAddress: UInt64 = 0x6000
    static let memoryMapAddress: UInt64 = 0x6100
    static let commandLineAddress: UInt64 = 0x7000
    static let commandLineLimit = 0x1000 - 1
    static let bootSectorAddress: UInt64 = 0x7c00

    init(_ source: BootSource, ramSize: UInt64) throws {
        switch source {
        case .pvh(let path, let commandLine):
            bytes = try BootError.readFile(path, limit: Self.maxImageSize)
            self.path = path
            let elf = try ELFImage(bytes: bytes, path: path)
            let ranges = RAMLayout.ranges(forSize: ramSize)
            for s in elf.segments {
                let fits = ranges.contains { r in
                    s.address >= r.guestAddress && s.memorySize <= r.size && s.address - r.guestAddress <= r.size - s.memorySize
                }
                // Anything under 1 MiB would collide with the start-of-day structures.
                guard fits, s.address >= 0x10_0000 || s.memorySize == 0 else {
                    throw BootError.segmentOutsideRAM(path: path, address: s.address, size: s.memorySize, ramSize: ramSize)
                }
            }
            guard commandLine.utf8.count <= Self.commandLineLimit else {
                throw BootError.commandLineTooLong(length: commandLine.utf8.count, limit: Self.commandLineLimit)
            }
            kind = .pvh(elf, commandLine: commandLine)
        case .bootSector(let path):
            bytes = try BootError.readFile(path, limit: Self.maxImageSize)
            self.path = path
            guard bytes.count >= 512 else { throw BootError.bootSectorTooShort(path: path, size: bytes.count) }
            guard bytes[510] == 0x55, bytes[511] == 0xaa else { throw BootError.noBootSignature(path: path) }
            kind = .bootSector
        }
    }

    /// Copies the image (and, for PVH, hvm_start_info) into RAM.
    func load(into memory: GuestMemory) throws {
        switch kind {
        case .bootSector:
            try memory.write(Self.bootSectorAddress, bytes: Array(bytes[0..<512]))
        case .pvh(let elf, let commandLine):
            for s in elf.segments {
                try memory.write(s.address, bytes: Array(bytes[s.fileOffset..<s.fileOffset + s.fileSize]))
                if s.memorySize > UInt64(s.fileSize) {
                    try memory.write(s.address + UInt64(s.fileSize), zeroes: Int(s.memorySize) - s.fileSize)
                }
            }
            let map = memory.regions.map { (address: $0.guestAddress, size: UInt64($0.size)) }
            try memory.write(Self.memoryMapAddress, bytes: PVHStartInfo.memoryMap(map))
            try memory.write(Self.commandLineAddress, bytes: Array(commandLine.utf8) + [0])
            try memory.write(Self.startInfoAddress, bytes: PVHStartInfo.startInfo(
                commandLineAddress: Self.commandLineAddress,
                memoryMapAddress: Self.memoryMapAddress, memoryMapEntries: UInt32(map.count)))
        }
    }
}

/// The PVH boot ABI's `struct hvm_start_info` (version 1) and its memory map.
enum PVHStartInfo {
    static let magic: UInt32 = 0x336e_c578
    static let ramType: UInt32 = 1

    static func startInfo(commandLineAddress: UInt64, memoryMapAddress: UInt64, memoryMapEntries: UInt32) -> [UInt8] {
        var b = LittleEndianBytes()
        b.u32(magic); b.u32(1); b.u32(0); b.u32(0)  // magic, version, flags, nr_modules
        b.u64(0)  // modlist_paddr
        b.u64(commandLineAddress)
        b.u64(0)  // rsdp_paddr: no ACPI
        b.u64(memoryMapAddress)
        b.u32(memoryMapEntries); b.u32(0)
        return b.bytes
    }

    static func memoryMap(_ ram: [(address: UInt64, size: UInt64)]) -> [UInt8] {
        var b = LittleEndianBytes()
        for r in ram { b.u64(r.address); b.u64(r.size); b.u32(ramType); b.u32(0) }
        return b.bytes
    }
}

struct LittleEndianBytes {
    var bytes: [UInt8] = []
    mutating func u32(_ v: UInt32) { for i in 0..<4 { bytes.append(UInt8(truncatingIfNeeded: v >> (8 * i))) } }
    mutating func u64(_ v: UInt64) { for i in 0..<8 { bytes.append(UInt8(truncatingIfNeeded: v >> (8 * i))) } }
}
