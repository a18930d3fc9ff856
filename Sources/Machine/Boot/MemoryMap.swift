import KVM

/// The guest-physical memory map a kernel is told about (e820 for the Linux boot protocol, the
/// PVH memory map for PVH): guest RAM as RAMLayout places it, minus what a PC reserves below
/// 1 MiB, plus KVM's private pages below 4 GiB. One list for both protocols, so they agree.
public enum MemoryMap {
    public struct Entry: Equatable, Sendable {
        public var address: UInt64
        public var size: UInt64
        public var type: EntryType
        public var end: UInt64 { address + size }
    }

    /// e820 type numbers (the PVH map uses the same ones).
    public enum EntryType: UInt32, Sendable {
        case ram = 1
        case reserved = 2
    }

    /// Where a PC BIOS keeps its extended data area, just below 640 KiB.
    public static let ebdaStart: UInt64 = 0x9_fc00
    /// Conventional memory ends here; the VGA hole and BIOS area follow.
    public static let conventionalEnd: UInt64 = 0xa_0000
    /// The BIOS area that holds the ACPI tables (0xE0000-0xFFFFF).
    public static let biosAreaStart: UInt64 = 0xe_0000
    public static let highMemoryStart: UInt64 = 0x10_0000

    public static func entries(ramSize: UInt64) -> [Entry] {
        var entries: [Entry] = []
        for range in RAMLayout.ranges(forSize: ramSize) {
            guard range.guestAddress == 0 else {
                entries.append(Entry(address: range.guestAddress, size: range.size, type: .ram))
                continue
            }
            let end = range.size
            entries.append(Entry(address: 0, size: min(end, ebdaStart), type: .ram))
            if end > ebdaStart {
                entries.append(Entry(address: ebdaStart, size: conventionalEnd - ebdaStart, type: .reserved))
            }
            if end > biosAreaStart {
                entries.append(Entry(address: biosAreaStart, size: highMemoryStart - biosAreaStart, type: .reserved))
            }
            if end > highMemoryStart {
                entries.append(Entry(address: highMemoryStart, size: end - highMemoryStart, type: .ram))
            }
        }
        entries.append(Entry(address: VirtualMachine.identityMapAddress,
                             size: VirtualMachine.tssAddress + VirtualMachine.tssSize - VirtualMachine.identityMapAddress,
                             type: .reserved))
        return entries.sorted { $0.address < $1.address }
    }

    /// The lowest RAM range above 1 MiB: where kernels, initrds and boot data go.
    public static func lowRAMEnd(ramSize: UInt64) -> UInt64 {
        min(ramSize, RAMLayout.lowRAMLimit)
    }

    /// True when [address, address + size) lies inside one RAM entry.
    public static func isRAM(_ address: UInt64, size: UInt64, in entries: [Entry]) -> Bool {
        entries.contains { e in
            e.type == .ram && address >= e.address && size <= e.size && address - e.address <= e.size - size
        }
    }
}
