import SystemSupport

/// Why a guest image could not be booted; each case says what to do about it.
public enum BootError: Error, CustomStringConvertible, Equatable, WrappingError {
    case cannotRead(path: String, cause: HostFile.ReadError)
    case notKernel(path: String)
    case truncatedKernel(path: String, size: Int, needed: Int)
    case bootProtocolTooOld(path: String, version: UInt16, minimum: UInt16)
    case notBzImage(path: String)
    case kernelNot64Bit(path: String)
    case badSetupHeader(path: String, detail: String)
    case kernelTooBigForRAM(path: String, needed: UInt64, ramSize: UInt64)
    case initrdTooBigForRAM(path: String, size: UInt64, room: UInt64)
    case emptyInitrd(path: String)
    case looksLikeBootSector(path: String)
    case badELF(path: String, detail: String)
    case noPVHNote(path: String)
    case segmentOutsideRAM(path: String, address: UInt64, size: UInt64, ramSize: UInt64)
    case noBootSignature(path: String)
    case bootSectorTooShort(path: String, size: Int)
    case commandLineTooLong(length: Int, limit: Int)

    public var description: String {
        switch self {
        case .cannotRead(let path, let cause):
            return "cannot read '\(path)': \(cause)"
        case .notKernel(let path):
            return "'\(path)' is neither a Linux bzImage nor an ELF file; -kernel takes a bzImage (/boot/vmlinuz-*) or an ELF with a PVH entry note (a boot sector goes in -drive file=IMG,format=raw)"
        case .truncatedKernel(let path, let size, let needed):
            return "'\(path)' is truncated: \(size) bytes, but its setup header needs \(needed)"
        case .bootProtocolTooOld(let path, let version, let minimum):
            return "'\(path)' speaks Linux boot protocol \(Self.protocolText(version)); swiftkvm needs \(Self.protocolText(minimum)) or later (Linux 3.8+) for the 64-bit entry point"
        case .notBzImage(let path):
            return "'\(path)' is a zImage (loaded below 1 MiB); swiftkvm boots bzImages only"
        case .kernelNot64Bit(let path):
            return "'\(path)' is a 32-bit kernel (no XLF_KERNEL_64 in xloadflags); swiftkvm enters kernels in 64-bit mode only"
        case .badSetupHeader(let path, let detail):
            return "'\(path)' has an unusable setup header: \(detail)"
        case .kernelTooBigForRAM(let path, let needed, let ramSize):
            return "'\(path)' needs guest RAM up to \(Self.mebibytes(needed)) to unpack itself, but the guest has \(Self.mebibytes(ramSize)); raise -m"
        case .initrdTooBigForRAM(let path, let size, let room):
            return "-initrd '\(path)' is \(Self.mebibytes(size)), but only \(Self.mebibytes(room)) of guest RAM lie between the kernel and the initrd limit; raise -m"
        case .emptyInitrd(let path):
            return "-initrd '\(path)' is empty"
        case .looksLikeBootSector(let path):
            return "'\(path)' is a boot sector, not an ELF kernel; boot it with -drive file=\(path),format=raw"
        case .badELF(let path, let detail):
            return "'\(path)' is a malformed ELF file: \(detail)"
        case .noPVHNote(let path):
            return "'\(path)' has no PVH entry point (ELF note Xen/XEN_ELFNOTE_PHYS32_ENTRY); swiftkvm boots kernels through PVH only"
        case .segmentOutsideRAM(let path, let address, let size, let ramSize):
            return "'\(path)': segment at 0x\(String(address, radix: 16)) (\(size) bytes) lies outside guest RAM (\(ramSize >> 20) MiB); raise -m or relink the kernel"
        case .noBootSignature(let path):
            return "'\(path)' is not a boot sector: bytes 510-511 are not 0x55 0xAA"
        case .bootSectorTooShort(let path, let size):
            return "'\(path)' is \(size) bytes; a boot sector is 512 bytes ending in 0x55 0xAA"
        case .commandLineTooLong(let length, let limit):
            return "-append: the command line is \(length) bytes; at most \(limit) are supported"
        }
    }

    private static func protocolText(_ v: UInt16) -> String { "\(v >> 8).\(v & 0xff)" }
    private static func mebibytes(_ n: UInt64) -> String {
        n % (1 << 20) == 0 ? "\(n >> 20) MiB" : "\(n) bytes (\(n >> 20).\((n & 0xf_ffff) * 10 >> 20) MiB)"
    }

    static func readContents(_ path: String, limit: Int) throws -> FileContents {
        do {
            return try FileContents(path: path, limit: limit)
        } catch let e as HostFile.ReadError {
            throw readError(e, path: path)
        }
    }

    static func readError(_ e: HostFile.ReadError, path: String) -> BootError {
        .cannotRead(path: path, cause: e)
    }

    public var underlying: (any Error)? {
        if case .cannotRead(_, let cause) = self { return cause }
        return nil
    }
}
