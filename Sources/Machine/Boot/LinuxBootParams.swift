/// The Linux boot protocol's zero page (`struct boot_params`, arch/x86/include/uapi/asm/
/// bootparam.h): the image's own setup header with the loader's fields filled in, the e820
/// map and the ACPI root pointer.
enum LinuxBootParams {
    static let size = 0x1000
    static let acpiRSDPOffset = 0x070
    static let e820EntriesOffset = 0x1e8
    static let e820TableOffset = 0x2d0
    static let e820EntrySize = 20
    static let e820MaxEntries = 128
    /// type_of_loader 0xFF: a boot loader without an assigned id.
    static let undefinedLoader: UInt8 = 0xff

    struct Placement: Equatable {
        var commandLineAddress: UInt64
        var initrd: (address: UInt64, size: UInt64)?
        var rsdpAddress: UInt64?

        static func == (a: Placement, b: Placement) -> Bool {
            a.commandLineAddress == b.commandLineAddress && a.rsdpAddress == b.rsdpAddress
                && a.initrd?.address == b.initrd?.address && a.initrd?.size == b.initrd?.size
        }
    }

    static func build(header: LinuxSetupHeader, placement: Placement, memoryMap: [MemoryMap.Entry]) -> [UInt8] {
        var page = [UInt8](repeating: 0, count: size)
        page.replaceSubrange(LinuxSetupHeader.headerStart..<LinuxSetupHeader.headerStart + header.headerBytes.count,
                             with: header.headerBytes)
        page[LinuxSetupHeader.typeOfLoaderOffset] = undefinedLoader
        put32(&page, LinuxSetupHeader.cmdLinePointerOffset, UInt32(placement.commandLineAddress))
        if let initrd = placement.initrd {
            put32(&page, LinuxSetupHeader.ramdiskImageOffset, UInt32(initrd.address))
            put32(&page, LinuxSetupHeader.ramdiskSizeOffset, UInt32(initrd.size))
        }
        if let rsdp = placement.rsdpAddress { put64(&page, acpiRSDPOffset, rsdp) }
        let entries = memoryMap.prefix(e820MaxEntries)
        page[e820EntriesOffset] = UInt8(entries.count)
        for (i, e) in entries.enumerated() {
            let at = e820TableOffset + i * e820EntrySize
            put64(&page, at, e.address)
            put64(&page, at + 8, e.size)
            put32(&page, at + 16, e.type.rawValue)
        }
        return page
    }

    private static func put32(_ b: inout [UInt8], _ at: Int, _ v: UInt32) {
        for i in 0..<4 { b[at + i] = UInt8(truncatingIfNeeded: v >> (8 * i)) }
    }
    private static func put64(_ b: inout [UInt8], _ at: Int, _ v: UInt64) {
        for i in 0..<8 { b[at + i] = UInt8(truncatingIfNeeded: v >> (8 * i)) }
    }
}

/// What the 64-bit boot protocol asks the loader to set up before the entry: a GDT with flat
/// __BOOT_CS (0x10) and __BOOT_DS (0x18), and page tables that identity-map what the kernel
/// touches first. The first 4 GiB are mapped with 2 MiB pages: kernel, zero page, command line
/// and initrd all lie below the 4 GiB boundary.
enum LongModeTables {
    static let gdtAddress: UInt64 = 0x500
    static let pml4Address: UInt64 = 0x9000
    static let pdptAddress: UInt64 = 0xa000
    static let firstPageDirectoryAddress: UInt64 = 0xb000
    static let mappedGiB = 4
    /// Where the tables end: nothing else may go in [pml4Address, tablesEnd).
    static let tablesEnd: UInt64 = firstPageDirectoryAddress + UInt64(mappedGiB) * 0x1000

    static let codeSelector: UInt16 = 0x10
    static let dataSelector: UInt16 = 0x18
    static let tssSelector: UInt16 = 0x20

    /// null, null, code (64-bit, execute/read), data (read/write), a 16-byte TSS descriptor.
    static let gdt: [UInt64] = [0, 0, 0x00af_9b00_0000_ffff, 0x00cf_9300_0000_ffff, 0x0000_8b00_0000_0067, 0]

    static var gdtBytes: [UInt8] { gdt.flatMap(littleEndian) }

    static let present: UInt64 = 1 << 0
    static let writable: UInt64 = 1 << 1
    static let largePage: UInt64 = 1 << 7

    /// PML4, PDPT and the page directories, in that order from pml4Address.
    static var pageTableBytes: [UInt8] {
        var pml4 = [UInt64](repeating: 0, count: 512)
        pml4[0] = pdptAddress | present | writable
        var pdpt = [UInt64](repeating: 0, count: 512)
        var directories: [UInt64] = []
        for g in 0..<mappedGiB {
            pdpt[g] = (firstPageDirectoryAddress + UInt64(g) * 0x1000) | present | writable
            for m in 0..<512 {
                directories.append((UInt64(g * 512 + m) << 21) | present | writable | largePage)
            }
        }
        return (pml4 + pdpt + directories).flatMap(littleEndian)
    }

    private static func littleEndian(_ v: UInt64) -> [UInt8] {
        (0..<8).map { UInt8(truncatingIfNeeded: v >> (8 * $0)) }
    }
}
