import CKVM

/// The register state each boot protocol hands to the guest's first instruction.
enum BootRegisters {
    /// PVH: 32-bit protected mode, flat segments, paging off, EBX = hvm_start_info.
    static func pvh(entry: UInt32, startInfo: UInt64, base sregs: kvm_sregs) -> (kvm_regs, kvm_sregs) {
        var regs = kvm_regs()
        regs.rip = UInt64(entry)
        regs.rbx = startInfo
        regs.rflags = 0x2
        var s = sregs
        s.cs = segment(selector: 0x10, type: 0xb, limit: 0xffff_ffff, db: 1, g: 1)
        let data = segment(selector: 0x18, type: 0x3, limit: 0xffff_ffff, db: 1, g: 1)
        s.ds = data; s.es = data; s.fs = data; s.gs = data; s.ss = data
        s.tr = segment(selector: 0x20, type: 0xb, limit: 0x67, db: 0, g: 0, system: true)
        s.cr0 = 0x11  // PE | ET
        s.cr4 = 0
        s.efer = 0
        return (regs, s)
    }

    /// The Linux 64-bit boot protocol: long mode with the VMM's GDT and identity page tables,
    /// flat __BOOT_CS/__BOOT_DS, interrupts off, RSI = boot_params.
    static func linux64(entry: UInt64, bootParams: UInt64, stack: UInt64, base sregs: kvm_sregs) -> (kvm_regs, kvm_sregs) {
        var regs = kvm_regs()
        regs.rip = entry
        regs.rsi = bootParams
        regs.rsp = stack
        regs.rbp = stack
        regs.rflags = 0x2
        var s = sregs
        s.cs = segment(selector: LongModeTables.codeSelector, type: 0xb, limit: 0xffff_ffff, db: 0, g: 1, long: true)
        let data = segment(selector: LongModeTables.dataSelector, type: 0x3, limit: 0xffff_ffff, db: 1, g: 1)
        s.ds = data; s.es = data; s.fs = data; s.gs = data; s.ss = data
        s.tr = segment(selector: LongModeTables.tssSelector, type: 0xb, limit: 0x67, db: 0, g: 0, system: true)
        s.gdt.base = LongModeTables.gdtAddress
        s.gdt.limit = UInt16(LongModeTables.gdt.count * 8 - 1)
        s.idt.base = 0
        s.idt.limit = 0
        s.cr3 = LongModeTables.pml4Address
        s.cr4 = 0x20  // PAE
        s.cr0 = 0x8000_0011  // PG | ET | PE
        s.efer = 0x500  // LMA | LME
        return (regs, s)
    }

    /// A boot sector: real mode at 0000:7c00 with DL = the boot drive, as a BIOS leaves it.
    static func bootSector(base sregs: kvm_sregs) -> (kvm_regs, kvm_sregs) {
        var regs = kvm_regs()
        regs.rip = 0x7c00
        regs.rdx = 0x80
        regs.rsp = 0x7c00
        regs.rflags = 0x2
        var s = sregs
        s.cs = segment(selector: 0, type: 0xb, limit: 0xffff, db: 0, g: 0)
        let data = segment(selector: 0, type: 0x3, limit: 0xffff, db: 0, g: 0)
        s.ds = data; s.es = data; s.fs = data; s.gs = data; s.ss = data
        s.cr0 = 0x6000_0010  // CD | NW | ET: the architectural reset value
        return (regs, s)
    }

    private static func segment(selector: UInt16, type: UInt8, limit: UInt32, db: UInt8, g: UInt8, system: Bool = false, long: Bool = false) -> kvm_segment {
        var seg = kvm_segment()
        seg.base = 0
        seg.limit = limit
        seg.selector = selector
        seg.type = type
        seg.present = 1
        seg.dpl = 0
        seg.db = db
        seg.s = system ? 0 : 1
        seg.l = long ? 1 : 0
        seg.g = g
        return seg
    }
}
