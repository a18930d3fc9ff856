import Glibc

/// Guest RAM: anonymous host mappings, one per KVM memory slot, addressed by guest-physical
/// address. Reads and writes are bounds-checked; the raw mapping is exposed for zero-copy I/O.
public final class GuestMemory {
    public struct Region {
        public let slot: UInt32
        public let guestAddress: UInt64
        public let size: Int
        public let host: UnsafeMutableRawPointer
        public var guestEnd: UInt64 { guestAddress + UInt64(size) }
    }

    public enum AccessError: Error, CustomStringConvertible, Equatable {
        case outsideRAM(address: UInt64, length: Int)
        public var description: String {
            switch self {
            case .outsideRAM(let address, let length):
                return "guest-physical range 0x\(String(address, radix: 16))+\(length) is not RAM"
            }
        }
    }

    public let regions: [Region]
    public var totalSize: Int { regions.reduce(0) { $0 + $1.size } }

    /// Maps `layout` (guest-physical start, size) ranges; sizes must be page multiples.
    public init(layout: [(guestAddress: UInt64, size: Int)]) throws {
        var mapped: [Region] = []
        for (index, range) in layout.enumerated() {
            let p = mmap(nil, range.size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0)
            guard let p, p != MAP_FAILED else {
                for r in mapped { munmap(r.host, r.size) }
                throw KVMError.mmap(what: "guest RAM", size: range.size, errno: errno)
            }
            // Transparent huge pages make pass-1 reads and zeroing cheaper; advisory only.
            _ = madvise(p, range.size, MADV_HUGEPAGE)
            mapped.append(Region(slot: UInt32(index), guestAddress: range.guestAddress, size: range.size, host: p))
        }
        regions = mapped
    }

    deinit {
        for r in regions { munmap(r.host, r.size) }
    }

    /// The host address of `length` bytes at `address`, when they lie inside one region.
    public func hostPointer(_ address: UInt64, length: Int) throws -> UnsafeMutableRawPointer {
        guard length >= 0 else { throw AccessError.outsideRAM(address: address, length: length) }
        for r in regions where address >= r.guestAddress && address < r.guestEnd {
            let offset = address - r.guestAddress
            guard UInt64(length) <= UInt64(r.size) - offset else { break }
            // SAFETY: offset + length lies within this region's mapping (checked above).
            return r.host + Int(offset)
        }
        throw AccessError.outsideRAM(address: address, length: length)
    }

    public func read(_ address: UInt64, count: Int) throws -> [UInt8] {
        let p = try hostPointer(address, length: count)
        // SAFETY: `p` covers `count` mapped bytes (hostPointer checked the range).
        return Array(UnsafeRawBufferPointer(start: p, count: count))
    }

    public func write(_ address: UInt64, bytes: [UInt8]) throws {
        let p = try hostPointer(address, length: bytes.count)
        // SAFETY: `p` covers `bytes.count` mapped bytes; an empty array may have no base address
        // (an ELF segment with no file bytes writes nothing).
        bytes.withUnsafeBytes { raw in
            if let source = raw.baseAddress { p.copyMemory(from: source, byteCount: raw.count) }
        }
    }

    public func write(_ address: UInt64, zeroes count: Int) throws {
        let p = try hostPointer(address, length: count)
        memset(p, 0, count)
    }

    public func readUInt64(_ address: UInt64) throws -> UInt64 {
        let p = try hostPointer(address, length: 8)
        return p.loadUnaligned(as: UInt64.self)
    }

    /// Returns every region's pages to zero, cheaply: the kernel drops the private pages.
    public func discardAll() {
        for r in regions { _ = madvise(r.host, r.size, MADV_DONTNEED) }
    }
}
