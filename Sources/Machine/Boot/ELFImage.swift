/// The parts of an ELF file a PVH boot needs: loadable segments and the PVH entry point.
/// Every offset and size is checked against the file before use: images come from users.
public struct ELFImage: Equatable {
    public struct Segment: Equatable {
        /// Guest-physical load address (p_paddr).
        public var address: UInt64
        public var fileOffset: Int
        public var fileSize: Int
        public var memorySize: UInt64
    }

    public var segments: [Segment]
    /// 32-bit protected-mode entry (XEN_ELFNOTE_PHYS32_ENTRY).
    public var pvhEntry: UInt32

    static let xenPhys32EntryNote: UInt32 = 18

    static func hasMagic<Bytes: RandomAccessCollection>(_ bytes: Bytes) -> Bool where Bytes.Element == UInt8, Bytes.Index == Int {
        bytes.count >= 4 && bytes[0] == 0x7f && bytes[1] == 0x45 && bytes[2] == 0x4c && bytes[3] == 0x46
    }

    public init<Bytes: RandomAccessCollection>(bytes: Bytes, path: String) throws where Bytes.Element == UInt8, Bytes.Index == Int {
        guard bytes.count >= 52, Self.hasMagic(bytes) else {
            if bytes.count >= 512, bytes[510] == 0x55, bytes[511] == 0xaa { throw BootError.looksLikeBootSector(path: path) }
            throw BootError.notKernel(path: path)
        }
        let r = ByteView(bytes: bytes)
        let is64: Bool
        switch bytes[4] {
        case 1: is64 = false
        case 2: is64 = true
        default: throw BootError.badELF(path: path, detail: "unknown ELF class \(bytes[4])")
        }
        guard bytes[5] == 1 else { throw BootError.badELF(path: path, detail: "not little-endian") }
        let machine = r.u16(18) ?? 0
        guard machine == 3 || machine == 62 else { throw BootError.badELF(path: path, detail: "not an x86 executable (e_machine \(machine))") }

        let phoff: UInt64?, phentsize: UInt16?, phnum: UInt16?
        if is64 {
            phoff = r.u64(0x20); phentsize = r.u16(0x36); phnum = r.u16(0x38)
        } else {
            phoff = r.u32(0x1c).map(UInt64.init); phentsize = r.u16(0x2a); phnum = r.u16(0x2c)
        }
        guard let phoff, let phentsize, let phnum, phnum > 0 else {
            throw BootError.badELF(path: path, detail: "no program headers")
        }
        guard phentsize >= (is64 ? 56 : 32), phoff < UInt64(bytes.count),
              UInt64(phnum) * UInt64(phentsize) <= UInt64(bytes.count) - phoff else {
            throw BootError.badELF(path: path, detail: "program headers lie outside the file")
        }

        var segments: [Segment] = []
        var entry: UInt32?
        for i in 0..<Int(phnum) {
            let h = Int(phoff) + i * Int(phentsize)
            let type = r.u32(h) ?? 0
            let offset, paddr, filesz, memsz: UInt64
            if is64 {
                offset = r.u64(h + 8) ?? 0; paddr = r.u64(h + 24) ?? 0
                filesz = r.u64(h + 32) ?? 0; memsz = r.u64(h + 40) ?? 0
            } else {
                offset = UInt64(r.u32(h + 4) ?? 0); paddr = UInt64(r.u32(h + 12) ?? 0)
                filesz = UInt64(r.u32(h + 16) ?? 0); memsz = UInt64(r.u32(h + 20) ?? 0)
            }
            guard offset <= UInt64(bytes.count), filesz <= UInt64(bytes.count) - offset else {
                throw BootError.badELF(path: path, detail: "segment \(i) lies outside the file")
            }
            switch type {
            case 1:  // PT_LOAD
                guard memsz >= filesz else { throw BootError.badELF(path: path, detail: "segment \(i) is smaller in memory than in the file") }
                segments.append(Segment(address: paddr, fileOffset: Int(offset), fileSize: Int(filesz), memorySize: memsz))
            case 4:  // PT_NOTE
                if let e = Self.pvhEntry(in: r, from: Int(offset), size: Int(filesz)) { entry = e }
            default:
                break
            }
        }
        guard let entry else { throw BootError.noPVHNote(path: path) }
        guard !segments.isEmpty else { throw BootError.badELF(path: path, detail: "no loadable segments") }
        self.segments = segments
        self.pvhEntry = entry
    }

    /// Walks the notes in one PT_NOTE segment looking for Xen's PHYS32_ENTRY.
    private static func pvhEntry<Bytes>(in r: ByteView<Bytes>, from start: Int, size: Int) -> UInt32? {
        var at = start
        let end = start + size
        func align4(_ n: Int) -> Int { (n + 3) & ~3 }
        while at + 12 <= end {
            guard let namesz = r.u32(at), let descsz = r.u32(at + 4), let type = r.u32(at + 8) else { return nil }
            let nameAt = at + 12
            guard namesz < 256, descsz < 4096 else { return nil }
            let descAt = nameAt + align4(Int(namesz))
            let next = descAt + align4(Int(descsz))
            guard next <= end else { return nil }
            let name = r.bytes(nameAt, Int(namesz)).prefix { $0 != 0 }
            if Array(name) == Array("Xen".utf8), type == xenPhys32EntryNote, descsz >= 4 {
                return r.u32(descAt)
            }
            at = next
        }
        return nil
    }
}

/// Bounds-checked little-endian reads over bytes (an array, a file's contents); nil past the end.
struct ByteView<Bytes: RandomAccessCollection> where Bytes.Element == UInt8, Bytes.Index == Int {
    let bytes: Bytes
    func u16(_ at: Int) -> UInt16? { le(at, 2).map { UInt16($0) } }
    func u32(_ at: Int) -> UInt32? { le(at, 4).map { UInt32($0) } }
    func u64(_ at: Int) -> UInt64? { le(at, 8) }
    func bytes(_ at: Int, _ count: Int) -> Bytes.SubSequence {
        guard at >= 0, count >= 0, at <= bytes.count, count <= bytes.count - at else { return bytes[bytes.startIndex..<bytes.startIndex] }
        return bytes[at..<at + count]
    }
    private func le(_ at: Int, _ n: Int) -> UInt64? {
        guard at >= 0, at <= bytes.count - n else { return nil }
        var v: UInt64 = 0
        for i in (0..<n).reversed() { v = v << 8 | UInt64(bytes[at + i]) }
        return v
    }
}
