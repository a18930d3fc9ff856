import KVM

/// Why a guest image could not be booted; each case says what to do about it.
public enum BootError: Error, CustomStringConvertible, Equatable {
    case cannotRead(path: String, reason: String)
    case notELF(path: String)
    case looksLikeBootSector(path: String)
    case badELF(path: String, detail: String)
    case noPVHNote(path: String)
    case segmentOutsideRAM(path: String, address: UInt64, size: UInt64, ramSize: UInt64)
    case noBootSignature(path: String)
    case bootSectorTooShort(path: String, size: Int)
    case commandLineTooLong(length: Int, limit: Int)

    public var description: String {
        switch self {
        case .cannotRead(let path, let reason):
            return "cannot read '\(path)': \(reason)"
        case .notELF(let path):
            return "'\(path)' is not an ELF file; -kernel takes an ELF with a PVH entry note (a boot sector goes in -drive file=IMG,format=raw)"
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

    static func readFile(_ path: String, limit: Int) throws -> [UInt8] {
        do {
            return try HostFile.readAll(path, limit: limit)
        } catch let e as HostFile.ReadError {
            switch e {
            case .cannotOpen(let err), .readFailed(let err):
                throw BootError.cannotRead(path: path, reason: HostFile.errorText(err))
            case .tooLarge(let size, let limit):
                throw BootError.cannotRead(path: path, reason: "\(size) bytes is larger than the \(limit >> 20) MiB limit")
            }
        }
    }
}
