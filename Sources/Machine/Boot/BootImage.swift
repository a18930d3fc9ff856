import KVM
import SystemSupport

/// What a machine boots, and how the image is put into fresh RAM.
public enum BootSource: Equatable, Sendable {
    /// A kernel (-kernel): a Linux bzImage, entered through the 64-bit boot protocol, or an ELF
    /// with a PVH entry note; its command line (-append) and an optional initrd (-initrd).
    case kernel(path: String, commandLine: String, initrd: String? = nil)
    /// A 512-byte boot sector entered in real mode at 0000:7c00 (-drive file=IMG,format=raw).
    case bootSector(path: String)
}

/// Tables the VMM puts in guest RAM next to the kernel (ACPI): where, what, and where the
/// root pointer is that the boot protocol hands over.
struct FirmwareTables: Equatable {
    var address: UInt64
    var bytes: [UInt8]
    var rootPointer: UInt64
}

/// A parsed image, ready to be copied into guest RAM (again, on every reset).
struct BootImage {
    enum Kind {
        case pvh(ELFImage, commandLine: String)
        case linux(LinuxSetupHeader, loadAddress: UInt64, commandLine: String)
        case bootSector
    }
    struct Initrd {
        let path: String
        let bytes: FileContents
        let address: UInt64
    }
    let kind: Kind
    let bytes: FileContents
    let path: String
    let initrd: Initrd?
    let firmware: FirmwareTables?
    let memoryMap: [MemoryMap.Entry]

    static let maxImageSize = 256 << 20
    static let startInfoAddress: UInt64 = 0x6000
    static let moduleListAddress: UInt64 = 0x6080
    static let memoryMapAddress: UInt64 = 0x6100
    static let commandLineAddress: UInt64 = 0x7000
    static let commandLineLimit = 0x1000 - 1
    static let bootSectorAddress: UInt64 = 0x7c00
    /// The Linux boot protocol's zero page, and its command line where QEMU puts it.
    static let bootParamsAddress: UInt64 = 0x7000
    static let linuxCommandLineAddress: UInt64 = 0x2_0000
    static let linuxCommandLineRoom = Int(MemoryMap.ebdaStart - linuxCommandLineAddress) - 1
    /// Where the 64-bit boot protocol's stack pointer starts (below the zero page).
    static let linuxStackPointer: UInt64 = 0x6ff0
    static let pageSize: UInt64 = 0x1000

    init(_ source: BootSource, ramSize: UInt64, firmware: FirmwareTables? = nil) throws {
        let map = MemoryMap.entries(ramSize: ramSize)
        memoryMap = map
        switch source {
        case .kernel(let path, let commandLine, let initrdPath):
            bytes = try BootError.readContents(path, limit: Self.maxImageSize)
            self.path = path
            let kernelEnd: UInt64
            let initrdLimit: UInt64
            if LinuxSetupHeader.isBzImage(bytes) && !ELFImage.hasMagic(bytes) {
                let header = try LinuxSetupHeader(bytes: bytes, path: path)
                // A relocatable kernel runs where it is put; one that is not moves itself to
                // pref_address from the classic 1 MiB.
                let load = header.relocatable ? header.preferredAddress : MemoryMap.highMemoryStart
                let end = max(load + UInt64(bytes.count - header.kernelOffset), header.preferredAddress + UInt64(header.initSize))
                guard end <= MemoryMap.lowRAMEnd(ramSize: ramSize) else {
                    throw BootError.kernelTooBigForRAM(path: path, needed: end, ramSize: ramSize)
                }
                let limit = min(header.commandLineSize == 0 ? 255 : Int(header.commandLineSize), Self.linuxCommandLineRoom)
                guard commandLine.utf8.count <= limit else {
                    throw BootError.commandLineTooLong(length: commandLine.utf8.count, limit: limit)
                }
                kind = .linux(header, loadAddress: load, commandLine: commandLine)
                kernelEnd = end
                initrdLimit = header.initrdLimit
            } else {
                let elf = try ELFImage(bytes: bytes, path: path)
                for s in elf.segments {
                    // Anything under 1 MiB would collide with the start-of-day structures.
                    guard MemoryMap.isRAM(s.address, size: s.memorySize, in: map), s.address >= MemoryMap.highMemoryStart || s.memorySize == 0 else {
                        throw BootError.segmentOutsideRAM(path: path, address: s.address, size: s.memorySize, ramSize: ramSize)
                    }
                }
                guard commandLine.utf8.count <= Self.commandLineLimit else {
                    throw BootError.commandLineTooLong(length: commandLine.utf8.count, limit: Self.commandLineLimit)
                }
                kind = .pvh(elf, commandLine: commandLine)
                kernelEnd = elf.segments.map { $0.address + $0.memorySize }.max() ?? MemoryMap.highMemoryStart
                initrdLimit = 1 << 32  // PVH's start info holds 64-bit addresses; stay in low RAM anyway
            }
            initrd = try initrdPath.map {
                try Self.placeInitrd(path: $0, above: kernelEnd, below: min(initrdLimit, MemoryMap.lowRAMEnd(ramSize: ramSize)))
            }
        case .bootSector(let path):
            bytes = try BootError.readContents(path, limit: Self.maxImageSize)
            self.path = path
            guard bytes.count >= 512 else { throw BootError.bootSectorTooShort(path: path, size: bytes.count) }
            guard bytes[510] == 0x55, bytes[511] == 0xaa else { throw BootError.noBootSignature(path: path) }
            kind = .bootSector
            initrd = nil
        }
        self.firmware = firmware
    }

    /// The initrd goes as high as it may, page-aligned, clear of the kernel's unpacking room.
    private static func placeInitrd(path: String, above kernelEnd: UInt64, below limit: UInt64) throws -> Initrd {
        let floor = (kernelEnd + pageSize - 1) & ~(pageSize - 1)
        let room = limit > floor ? limit - floor : 0
        let bytes: FileContents
        do {
            bytes = try FileContents(path: path, limit: Int(room))
        } catch HostFile.ReadError.tooLarge(let size, _) {
            throw BootError.initrdTooBigForRAM(path: path, size: UInt64(size), room: room)
        } catch let e as HostFile.ReadError {
            throw BootError.readError(e, path: path)
        }
        guard !bytes.isEmpty else { throw BootError.emptyInitrd(path: path) }
        let address = (limit - UInt64(bytes.count)) & ~(pageSize - 1)
        return Initrd(path: path, bytes: bytes, address: address)
    }

    /// Where the guest starts, for BootRegisters.
    var entryPoint: UInt64 {
        switch kind {
        case .pvh(let elf, _): return UInt64(elf.pvhEntry)
        case .linux(_, let load, _): return load + LinuxSetupHeader.entry64Offset
        case .bootSector: return Self.bootSectorAddress
        }
    }

    /// Copies the image, its initrd, the firmware tables and what the boot protocol hands
    /// over into RAM.
    func load(into memory: GuestMemory) throws {
        if let firmware { try memory.write(firmware.address, bytes: firmware.bytes) }
        if let initrd { try memory.write(initrd.address, contentsOf: initrd.bytes, 0..<initrd.bytes.count) }
        switch kind {
        case .bootSector:
            try memory.write(Self.bootSectorAddress, contentsOf: bytes, 0..<512)
        case .pvh(let elf, let commandLine):
            for s in elf.segments {
                try memory.write(s.address, contentsOf: bytes, s.fileOffset..<s.fileOffset + s.fileSize)
                if s.memorySize > UInt64(s.fileSize) {
                    try memory.write(s.address + UInt64(s.fileSize), zeroes: Int(s.memorySize) - s.fileSize)
                }
            }
            try memory.write(Self.memoryMapAddress, bytes: PVHStartInfo.memoryMap(memoryMap))
            try memory.write(Self.commandLineAddress, bytes: Array(commandLine.utf8) + [0])
            var modules = 0
            if let initrd {
                try memory.write(Self.moduleListAddress, bytes: PVHStartInfo.module(address: initrd.address, size: UInt64(initrd.bytes.count)))
                modules = 1
            }
            try memory.write(Self.startInfoAddress, bytes: PVHStartInfo.startInfo(
                commandLineAddress: Self.commandLineAddress,
                memoryMapAddress: Self.memoryMapAddress, memoryMapEntries: UInt32(memoryMap.count),
                moduleListAddress: modules > 0 ? Self.moduleListAddress : 0, moduleCount: UInt32(modules),
                rsdpAddress: firmware?.rootPointer ?? 0))
        case .linux(let header, let load, let commandLine):
            try memory.write(load, contentsOf: bytes, header.kernelOffset..<bytes.count)
            try memory.write(Self.linuxCommandLineAddress, bytes: Array(commandLine.utf8) + [0])
            let placement = LinuxBootParams.Placement(
                commandLineAddress: Self.linuxCommandLineAddress,
                initrd: initrd.map { ($0.address, UInt64($0.bytes.count)) },
                rsdpAddress: firmware?.rootPointer)
            try memory.write(Self.bootParamsAddress, bytes: LinuxBootParams.build(header: header, placement: placement, memoryMap: memoryMap))
            try memory.write(LongModeTables.gdtAddress, bytes: LongModeTables.gdtBytes)
            try memory.write(LongModeTables.pml4Address, bytes: LongModeTables.pageTableBytes)
        }
    }
}

extension GuestMemory {
    /// Copies `range` of a file's contents to guest-physical `address`, with no array between.
    func write(_ address: UInt64, contentsOf contents: FileContents, _ range: Range<Int>) throws {
        try contents.withUnsafeBytes(range) { try write(address, raw: $0) }
    }
}

/// The PVH boot ABI's `struct hvm_start_info` (version 1), its module list and memory map.
enum PVHStartInfo {
    static let magic: UInt32 = 0x336e_c578

    static func startInfo(commandLineAddress: UInt64, memoryMapAddress: UInt64, memoryMapEntries: UInt32,
                          moduleListAddress: UInt64 = 0, moduleCount: UInt32 = 0, rsdpAddress: UInt64 = 0) -> [UInt8] {
        var b = LittleEndianBytes()
        b.u32(magic); b.u32(1); b.u32(0); b.u32(moduleCount)  // magic, version, flags, nr_modules
        b.u64(moduleListAddress)
        b.u64(commandLineAddress)
        b.u64(rsdpAddress)
        b.u64(memoryMapAddress)
        b.u32(memoryMapEntries); b.u32(0)
        return b.bytes
    }

    /// `struct hvm_modlist_entry`: paddr, size, cmdline_paddr, reserved.
    static func module(address: UInt64, size: UInt64) -> [UInt8] {
        var b = LittleEndianBytes()
        b.u64(address); b.u64(size); b.u64(0); b.u64(0)
        return b.bytes
    }

    /// `struct hvm_memmap_table_entry`: addr, size, type (e820 numbering), reserved.
    static func memoryMap(_ entries: [MemoryMap.Entry]) -> [UInt8] {
        var b = LittleEndianBytes()
        for e in entries { b.u64(e.address); b.u64(e.size); b.u32(e.type.rawValue); b.u32(0) }
        return b.bytes
    }
}

struct LittleEndianBytes {
    var bytes: [UInt8] = []
    mutating func u8(_ v: UInt8) { bytes.append(v) }
    mutating func u16(_ v: UInt16) { for i in 0..<2 { bytes.append(UInt8(truncatingIfNeeded: v >> (8 * i))) } }
    mutating func u32(_ v: UInt32) { for i in 0..<4 { bytes.append(UInt8(truncatingIfNeeded: v >> (8 * i))) } }
    mutating func u64(_ v: UInt64) { for i in 0..<8 { bytes.append(UInt8(truncatingIfNeeded: v >> (8 * i))) } }
}
