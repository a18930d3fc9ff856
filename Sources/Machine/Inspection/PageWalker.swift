/// Translates guest-virtual to guest-physical addresses by walking the guest's page tables,
/// as the CPU would, for the monitor's `x` and `memsave`.
public struct PageWalker {
    public enum WalkError: Error, CustomStringConvertible, Equatable {
        case notMapped(virtualAddress: UInt64)
        case tableOutsideRAM(virtualAddress: UInt64, tableAddress: UInt64)

        public var description: String {
            switch self {
            case .notMapped(let va):
                return "virtual address 0x\(String(va, radix: 16)) is not mapped"
            case .tableOutsideRAM(let va, let table):
                return "cannot translate 0x\(String(va, radix: 16)): page table at 0x\(String(table, radix: 16)) is outside RAM"
            }
        }
    }

    let cr0: UInt64, cr3: UInt64, cr4: UInt64, efer: UInt64
    /// Reads one 8-byte (or, for 32-bit paging, 4-byte) table entry; nil outside RAM.
    let readEntry: (_ physicalAddress: UInt64, _ size: Int) -> UInt64?

    public init(registers r: CPURegisters, readEntry: @escaping (UInt64, Int) -> UInt64?) {
        cr0 = r.cr0; cr3 = r.cr3; cr4 = r.cr4; efer = r.efer
        self.readEntry = readEntry
    }

    public func translate(_ va: UInt64) throws -> UInt64 {
        let pagingOn = cr0 & (1 << 31) != 0
        guard pagingOn else { return va & 0xffff_ffff }
        let pae = cr4 & (1 << 5) != 0
        let longMode = efer & (1 << 10) != 0
        if longMode { return try walk(va, levels: 4, topShift: 39, table: cr3 & 0x000f_ffff_ffff_f000, entrySize: 8) }
        if pae { return try walk(va & 0xffff_ffff, levels: 3, topShift: 30, table: cr3 & 0xffff_ffe0, entrySize: 8) }
        return try walk(va & 0xffff_ffff, levels: 2, topShift: 22, table: cr3 & 0xffff_f000, entrySize: 4)
    }

    private func walk(_ va: UInt64, levels: Int, topShift: UInt64, table start: UInt64, entrySize: Int) throws -> UInt64 {
        let indexBits: UInt64 = entrySize == 8 ? 9 : 10
        let addressMask: UInt64 = entrySize == 8 ? 0x000f_ffff_ffff_f000 : 0xffff_f000
        var table = start
        var shift = topShift
        for level in 0..<levels {
            // PAE's top level has only 4 entries, indexed by bits 31:30.
            let mask: UInt64 = (levels == 3 && level == 0) ? 0x3 : (1 << indexBits) - 1
            let index = (va >> shift) & mask
            let entryAddress = table + index * UInt64(entrySize)
            guard let entry = readEntry(entryAddress, entrySize) else {
                throw WalkError.tableOutsideRAM(virtualAddress: va, tableAddress: entryAddress)
            }
            guard entry & 1 != 0 else { throw WalkError.notMapped(virtualAddress: va) }
            let isLeaf = level == levels - 1 || (level > 0 || levels == 2) && entry & 0x80 != 0 && !(levels == 3 && level == 0)
            if isLeaf {
                let pageMask: UInt64 = (1 << shift) - 1
                if entrySize == 4 && level == 0 {
                    // 4 MiB page in 32-bit paging.
                    return (entry & 0xffc0_0000) | (va & pageMask)
                }
                return (entry & addressMask & ~pageMask) | (va & pageMask)
            }
            table = entry & addressMask
            shift -= indexBits
        }
        throw WalkError.notMapped(virtualAddress: va)
    }
}
