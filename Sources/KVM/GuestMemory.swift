import SystemSupport
import CSystemSupport
import CKVM
import Glibc

/// Guest RAM: one host mapping per KVM memory slot, addressed by guest-physical address.
/// Reads and writes are bounds-checked; the raw mapping is exposed for zero-copy I/O. Each
/// region has a backing (RAMBacking) that can be replaced in place, keeping its host address.
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

    /// A memfd holding every region, and where each region lies in it.
    public struct SharedMemory: Equatable, Sendable {
        public let fd: Int32
        public let offsets: [Int]
    }

    public let regions: [Region]
    public var totalSize: Int { regions.reduce(0) { $0 + $1.size } }

    private let lock = Mutex()
    private var backings: [RAMBacking]
    /// The memfd behind `.memfd` regions (owned), or -1.
    private var memfd: Int32 = -1

    /// Maps `layout` (guest-physical start, size) ranges; sizes must be page multiples. With
    /// `.memfd` all regions live in one memfd, one after the other.
    public init(layout: [(guestAddress: UInt64, size: Int)], backing: RAMBackingKind = .anonymous) throws {
        var fd: Int32 = -1
        if backing == .memfd {
            fd = csystem_memfd_create("swiftkvm-guest-ram")
            guard fd >= 0 else { throw KVMError.systemCall(name: "memfd_create", errno: errno) }
            guard ftruncate(fd, off_t(layout.reduce(0) { $0 + $1.size })) == 0 else {
                let err = errno
                close(fd)
                throw KVMError.systemCall(name: "ftruncate of the guest RAM memfd", errno: err)
            }
        }
        var mapped: [Region] = []
        var kinds: [RAMBacking] = []
        var offset = 0
        for (index, range) in layout.enumerated() {
            let p = fd >= 0
                ? mmap(nil, range.size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, fd, off_t(offset))
                : mmap(nil, range.size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0)
            guard let p, p != MAP_FAILED else {
                let err = errno
                for r in mapped { munmap(r.host, r.size) }
                if fd >= 0 { close(fd) }
                throw KVMError.mmap(what: "guest RAM", size: range.size, errno: err)
            }
            // Transparent huge pages make pass-1 reads and zeroing cheaper; advisory only.
            _ = madvise(p, range.size, MADV_HUGEPAGE)
            mapped.append(Region(slot: UInt32(index), guestAddress: range.guestAddress, size: range.size, host: p))
            kinds.append(fd >= 0 ? .memfd(offset: offset) : .anonymous)
            offset += range.size
        }
        regions = mapped
        backings = kinds
        memfd = fd
    }

    deinit {
        for r in regions { munmap(r.host, r.size) }
        if memfd >= 0 { close(memfd) }
    }

    public func backing(ofRegion index: Int) -> RAMBacking {
        lock.withLock { backings[index] }
    }

    /// The memfd behind the regions, when they are all memfd-backed.
    public var sharedMemory: SharedMemory? {
        lock.withLock {
            var offsets: [Int] = []
            for backing in backings {
                guard case .memfd(let offset) = backing, memfd >= 0 else { return nil }
                offsets.append(offset)
            }
            return SharedMemory(fd: memfd, offsets: offsets)
        }
    }

    /// Maps region i onto `file` at `offsets[i]`, copy-on-write. The guest must not run.
    public func mapPrivately(file fd: Int32, offsets: [Int]) throws {
        try remap(offsets.count) { index, region in
            // SAFETY: MAP_FIXED replaces exactly this region's own mapping, at its own address.
            (mmap(region.host, region.size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_FIXED | MAP_NORESERVE, fd, off_t(offsets[index])),
             .privateFile)
        }
    }

    /// Maps region i onto the memfd `fd` at `offsets[i]`, shared; takes `fd` over. The guest must not run.
    public func adoptShared(fd: Int32, offsets: [Int]) throws {
        do {
            try remap(offsets.count) { index, region in
                // SAFETY: MAP_FIXED replaces exactly this region's own mapping, at its own address.
                (mmap(region.host, region.size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED | MAP_NORESERVE, fd, off_t(offsets[index])),
                 .memfd(offset: offsets[index]))
            }
        } catch {
            close(fd)
            throw error
        }
        lock.withLock {
            if memfd >= 0 { close(memfd) }
            memfd = fd
        }
    }

    /// Replaces every region with fresh anonymous (zero) memory and lets go of any memfd or
    /// file: after a handoff, nothing this process does can touch the guest's pages any more.
    public func detach() throws {
        try remap(regions.count) { _, region in
            // SAFETY: MAP_FIXED replaces exactly this region's own mapping, at its own address.
            (mmap(region.host, region.size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE, -1, 0),
             .anonymous)
        }
        lock.withLock {
            if memfd >= 0 { close(memfd) }
            memfd = -1
        }
    }

    private func remap(_ count: Int, _ map: (Int, Region) -> (UnsafeMutableRawPointer?, RAMBacking)) throws {
        guard count == regions.count else {
            throw KVMError.mmap(what: "guest RAM (\(count) ranges for \(regions.count) regions)", size: totalSize, errno: EINVAL)
        }
        for (index, region) in regions.enumerated() {
            let (p, backing) = map(index, region)
            guard p == region.host else {
                throw KVMError.mmap(what: "guest RAM region \(index)", size: region.size, errno: errno)
            }
            if backing == .anonymous { _ = madvise(region.host, region.size, MADV_HUGEPAGE) }
            lock.withLock { backings[index] = backing }
        }
    }

    /// Commits every page now (QEMU's -mem-prealloc): no page fault allocates memory later.
    /// MADV_POPULATE_WRITE needs Linux 5.14; false when the kernel refuses it.
    public func populate() -> Bool {
        let populateWrite: Int32 = 23
        return regions.allSatisfy { madvise($0.host, $0.size, populateWrite) == 0 }
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

    public func write(_ address: UInt64, raw bytes: UnsafeRawBufferPointer) throws {
        let p = try hostPointer(address, length: bytes.count)
        // SAFETY: `p` covers `bytes.count` mapped bytes; an empty buffer may have no base address.
        if let source = bytes.baseAddress { p.copyMemory(from: source, byteCount: bytes.count) }
    }

    public func write(_ address: UInt64, zeroes count: Int) throws {
        let p = try hostPointer(address, length: count)
        memset(p, 0, count)
    }

    public func readUInt64(_ address: UInt64) throws -> UInt64 {
        let p = try hostPointer(address, length: 8)
        return p.loadUnaligned(as: UInt64.self)
    }

    /// Returns every region's pages to zero, cheaply: anonymous pages are dropped, a memfd's
    /// range is punched out, and a file mapped copy-on-write is replaced by anonymous memory
    /// (dropping its private pages would show the file again).
    public func discardAll() throws {
        for (index, region) in regions.enumerated() {
            switch backing(ofRegion: index) {
            case .anonymous:
                _ = madvise(region.host, region.size, MADV_DONTNEED)
            case .memfd(let offset):
                let fd = lock.withLock { memfd }
                if csystem_punch_hole(fd, Int64(offset), Int64(region.size)) != 0 { memset(region.host, 0, region.size) }
            case .privateFile:
                // SAFETY: MAP_FIXED replaces exactly this region's own mapping, at its own address.
                let p = mmap(region.host, region.size, PROT_READ | PROT_WRITE,
                             MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE, -1, 0)
                guard p == region.host else { throw KVMError.mmap(what: "guest RAM region \(index)", size: region.size, errno: errno) }
                lock.withLock { backings[index] = .anonymous }
            }
        }
    }
}
