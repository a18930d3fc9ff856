/// The setup header of a Linux bzImage (Documentation/arch/x86/boot.rst), checked for what the
/// 64-bit boot protocol needs. Every field is read bounds-checked: images come from users.
public struct LinuxSetupHeader: Equatable {
    /// 2.12 is the first version with xloadflags, where XLF_KERNEL_64 says that the 64-bit entry
    /// at +0x200 exists; every field used here (cmdline_size 2.06, kernel_alignment and
    /// relocatable_kernel 2.05, pref_address and init_size 2.10) is older. Linux 3.8 and later.
    public static let minimumVersion: UInt16 = 0x020c

    static let setupSectorsOffset = 0x1f1
    static let headerStart = 0x1f1
    static let bootFlagOffset = 0x1fe
    static let jumpOffset = 0x200
    static let magicOffset = 0x202
    static let versionOffset = 0x206
    static let typeOfLoaderOffset = 0x210
    static let loadFlagsOffset = 0x211
    static let ramdiskImageOffset = 0x218
    static let ramdiskSizeOffset = 0x21c
    static let cmdLinePointerOffset = 0x228
    static let initrdAddressMaxOffset = 0x22c
    static let kernelAlignmentOffset = 0x230
    static let relocatableOffset = 0x234
    static let xloadflagsOffset = 0x236
    static let cmdLineSizeOffset = 0x238
    static let prefAddressOffset = 0x258
    static let initSizeOffset = 0x260
    static let sysSizeOffset = 0x1f4
    /// The header through init_size (2.10 and later): the least a usable header covers.
    static let minimumHeaderEnd = 0x264

    static let magic: [UInt8] = Array("HdrS".utf8)
    /// loadflags bit 0: the protected-mode kernel loads at 1 MiB or above (a bzImage).
    static let loadedHigh: UInt8 = 0x01
    /// xloadflags bit 0: the kernel has the 64-bit entry point at load address + 0x200.
    static let xlfKernel64: UInt16 = 0x01
    /// Offset of the 64-bit entry point from the load address.
    public static let entry64Offset: UInt64 = 0x200

    public var version: UInt16
    public var setupSectors: Int
    public var loadFlags: UInt8
    public var xloadflags: UInt16
    public var initrdAddressMax: UInt32
    public var kernelAlignment: UInt32
    public var relocatable: Bool
    /// Longest command line the kernel takes, without the terminating NUL.
    public var commandLineSize: UInt32
    public var preferredAddress: UInt64
    /// Memory the kernel needs from its load address until it can set up its own.
    public var initSize: UInt32
    /// File offset of the protected-mode kernel (after the real-mode setup sectors).
    public var kernelOffset: Int
    /// The header's own bytes, from 0x1f1 to its end (0x202 + the byte at 0x201): the part
    /// of boot_params the loader copies from the image.
    public var headerBytes: [UInt8]

    /// True when the bytes carry a setup header at all ("HdrS" at 0x202 behind a boot sector).
    static func isBzImage<Bytes: RandomAccessCollection>(_ bytes: Bytes) -> Bool where Bytes.Element == UInt8, Bytes.Index == Int {
        let r = ByteView(bytes: bytes)
        return Array(r.bytes(Self.magicOffset, 4)) == Self.magic
    }

    public init<Bytes: RandomAccessCollection>(bytes: Bytes, path: String) throws where Bytes.Element == UInt8, Bytes.Index == Int {
        let r = ByteView(bytes: bytes)
        guard Array(r.bytes(Self.magicOffset, 4)) == Self.magic else { throw BootError.notKernel(path: path) }
        guard bytes.count >= Self.minimumHeaderEnd, let version = r.u16(Self.versionOffset) else {
            throw BootError.truncatedKernel(path: path, size: bytes.count, needed: Self.minimumHeaderEnd)
        }
        guard version >= Self.minimumVersion else {
            throw BootError.bootProtocolTooOld(path: path, version: version, minimum: Self.minimumVersion)
        }
        self.version = version
        let sectors = Int(bytes[Self.setupSectorsOffset])
        setupSectors = sectors == 0 ? 4 : sectors  // boot.rst: 0 means 4
        kernelOffset = (setupSectors + 1) * 512
        loadFlags = bytes[Self.loadFlagsOffset]
        xloadflags = r.u16(Self.xloadflagsOffset) ?? 0
        initrdAddressMax = r.u32(Self.initrdAddressMaxOffset) ?? 0
        kernelAlignment = r.u32(Self.kernelAlignmentOffset) ?? 0
        relocatable = bytes[Self.relocatableOffset] != 0
        commandLineSize = r.u32(Self.cmdLineSizeOffset) ?? 0
        preferredAddress = r.u64(Self.prefAddressOffset) ?? 0
        initSize = r.u32(Self.initSizeOffset) ?? 0
        let headerEnd = Self.magicOffset + Int(bytes[Self.jumpOffset + 1])
        headerBytes = Array(r.bytes(Self.headerStart, max(headerEnd, Self.minimumHeaderEnd) - Self.headerStart))

        guard loadFlags & Self.loadedHigh != 0 else { throw BootError.notBzImage(path: path) }
        guard xloadflags & Self.xlfKernel64 != 0 else { throw BootError.kernelNot64Bit(path: path) }
        let sysSize = Int(r.u32(Self.sysSizeOffset) ?? 0) * 16
        guard sysSize > 0, bytes.count >= kernelOffset + sysSize else {
            throw BootError.truncatedKernel(path: path, size: bytes.count, needed: kernelOffset + sysSize)
        }
        guard kernelAlignment == 0 || kernelAlignment.nonzeroBitCount == 1, preferredAddress % UInt64(max(kernelAlignment, 1)) == 0 else {
            throw BootError.badSetupHeader(path: path, detail: "pref_address 0x\(String(preferredAddress, radix: 16)) does not meet kernel_alignment 0x\(String(kernelAlignment, radix: 16))")
        }
        guard preferredAddress >= MemoryMap.highMemoryStart, initSize > 0 else {
            throw BootError.badSetupHeader(path: path, detail: "pref_address 0x\(String(preferredAddress, radix: 16)) or init_size \(initSize) is not usable")
        }
    }

    /// Highest address (exclusive) an initrd may end at.
    public var initrdLimit: UInt64 { UInt64(initrdAddressMax) + 1 }
}
