import Machine

/// Renders a vCPU's registers in the layout of QEMU's x86_cpu_dump_state with CPU_DUMP_FPU
/// (target/i386/cpu-dump.c), which is what `info registers` prints. The 64-bit layout is used
/// when the CPU runs 64-bit code (EFER.LMA and CS.L), the 32-bit one otherwise.
public enum RegisterDumpFormatter {
    public static func dump(_ r: CPURegisters) -> String {
        let mode = Mode(r)
        var out = generalPurpose(r, mode)
        for (name, segment) in [("ES", r.es), ("CS", r.cs), ("SS", r.ss), ("DS", r.ds), ("FS", r.fs), ("GS", r.gs),
                                ("LDT", r.ldt), ("TR", r.tr)] {
            out += self.segment(name, segment, mode) + "\n"
        }
        out += controlAndDebug(r, mode)
        out += "EFER=\(Pad.hex(r.efer, 16))\n"
        out += floatingPoint(r, mode)
        return out
    }

    struct Mode {
        /// 64-bit code segment: selects the wide register and segment layouts.
        var code64: Bool
        /// EFER.LMA: long mode tables (GDT/IDT/CR layout, 64-bit system descriptor names).
        var longMode: Bool
        /// CR0.PE: outside protected mode segment attributes are not decoded.
        var protected: Bool

        init(_ r: CPURegisters) {
            code64 = r.isLongMode
            longMode = r.efer & eferLMA != 0
            protected = r.cr0 & 1 != 0
        }
    }

    private static let eferLMA: UInt64 = 1 << 10

    static func generalPurpose(_ r: CPURegisters, _ mode: Mode) -> String {
        let flags = UInt32(truncatingIfNeeded: r.rflags)
        // QEMU takes the CPL from SS.DPL; interrupt shadow, SMM and halt state are not in the
        // snapshot, and A20 is always on under KVM.
        let tail = "[\(flagLetters(flags))] CPL=\(r.ss.dpl) II=0 A20=1 SMM=0 HLT=0\n"
        if mode.code64 {
            func row(_ names: [String], _ values: [UInt64]) -> String {
                zip(names, values).map { "\($0)=\(Pad.hex($1, 16))" }.joined(separator: " ") + "\n"
            }
            return row(["RAX", "RBX", "RCX", "RDX"], [r.rax, r.rbx, r.rcx, r.rdx])
                + row(["RSI", "RDI", "RBP", "RSP"], [r.rsi, r.rdi, r.rbp, r.rsp])
                + row(["R8 ", "R9 ", "R10", "R11"], [r.r8, r.r9, r.r10, r.r11])
                + row(["R12", "R13", "R14", "R15"], [r.r12, r.r13, r.r14, r.r15])
                + "RIP=\(Pad.hex(r.rip, 16)) RFL=\(Pad.hex(UInt64(flags), 8)) " + tail
        }
        func row(_ names: [String], _ values: [UInt64]) -> String {
            zip(names, values).map { "\($0)=\(hex32($1))" }.joined(separator: " ") + "\n"
        }
        return row(["EAX", "EBX", "ECX", "EDX"], [r.rax, r.rbx, r.rcx, r.rdx])
            + row(["ESI", "EDI", "EBP", "ESP"], [r.rsi, r.rdi, r.rbp, r.rsp])
            + "EIP=\(hex32(r.rip)) EFL=\(Pad.hex(UInt64(flags), 8)) " + tail
    }

    /// `[DOSZAPC]`, a letter for each set flag and `-` for each clear one.
    static func flagLetters(_ flags: UInt32) -> String {
        let bits: [(Character, UInt32)] = [("D", 1 << 10), ("O", 1 << 11), ("S", 1 << 7), ("Z", 1 << 6),
                                           ("A", 1 << 4), ("P", 1 << 2), ("C", 1 << 0)]
        return String(bits.map { flags & $0.1 != 0 ? $0.0 : "-" })
    }

    /// The descriptor's attribute bits as QEMU keeps them (the second descriptor dword,
    /// masked to bits 8..23): type, S, DPL, P, AVL, L, D/B, G.
    static func attributeFlags(_ s: SegmentRegister) -> UInt32 {
        var flags = UInt32(s.type & 0xf) << 8
        if s.s { flags |= 1 << 12 }
        flags |= UInt32(s.dpl & 3) << 13
        if s.present && !s.unusable { flags |= 1 << 15 }
        if s.avl { flags |= 1 << 20 }
        if s.l { flags |= 1 << 21 }
        if s.db { flags |= 1 << 22 }
        if s.g { flags |= 1 << 23 }
        return flags
    }

    static func segment(_ name: String, _ s: SegmentRegister, _ mode: Mode) -> String {
        let flags = attributeFlags(s)
        let label = Pad.right(name, 3)
        var line = mode.code64
            ? "\(label)=\(Pad.hex(UInt64(s.selector), 4)) \(Pad.hex(s.base, 16)) \(hex32(UInt64(s.limit))) \(hex32(UInt64(flags)))"
            : "\(label)=\(Pad.hex(UInt64(s.selector), 4)) \(hex32(s.base)) \(hex32(UInt64(s.limit))) \(hex32(UInt64(flags)))"
        guard mode.protected, flags & (1 << 15) != 0 else { return line }
        line += " DPL=\(s.dpl & 3) "
        let type = s.type & 0xf
        if s.s {
            if type & 0x8 != 0 {
                line += s.l ? "CS64" : (s.db ? "CS32" : "CS16")
                line += " [" + (type & 0x4 != 0 ? "C" : "-") + (type & 0x2 != 0 ? "R" : "-")
            } else {
                line += (s.db || mode.longMode) ? "DS  " : "DS16"
                line += " [" + (type & 0x4 != 0 ? "E" : "-") + (type & 0x2 != 0 ? "W" : "-")
            }
            line += (type & 0x1 != 0 ? "A" : "-") + "]"
        } else {
            line += (mode.longMode ? systemTypes64 : systemTypes32)[Int(type)]
        }
        return line
    }

    private static let systemTypes32 = [
        "Reserved", "TSS16-avl", "LDT", "TSS16-busy", "CallGate16", "TaskGate", "IntGate16", "TrapGate16",
        "Reserved", "TSS32-avl", "Reserved", "TSS32-busy", "CallGate32", "Reserved", "IntGate32", "TrapGate32",
    ]
    private static let systemTypes64 = [
        "<hiword>", "Reserved", "LDT", "Reserved", "Reserved", "Reserved", "Reserved", "Reserved",
        "Reserved", "TSS64-avl", "Reserved", "TSS64-busy", "CallGate64", "Reserved", "IntGate64", "TrapGate64",
    ]

    static func controlAndDebug(_ r: CPURegisters, _ mode: Mode) -> String {
        var out: String
        if mode.longMode {
            out = "GDT=     \(Pad.hex(r.gdt.base, 16)) \(hex32(UInt64(r.gdt.limit)))\n"
                + "IDT=     \(Pad.hex(r.idt.base, 16)) \(hex32(UInt64(r.idt.limit)))\n"
                + "CR0=\(hex32(r.cr0)) CR2=\(Pad.hex(r.cr2, 16)) CR3=\(Pad.hex(r.cr3, 16)) CR4=\(hex32(r.cr4))\n"
        } else {
            out = "GDT=     \(hex32(r.gdt.base)) \(hex32(UInt64(r.gdt.limit)))\n"
                + "IDT=     \(hex32(r.idt.base)) \(hex32(UInt64(r.idt.limit)))\n"
                + "CR0=\(hex32(r.cr0)) CR2=\(hex32(r.cr2)) CR3=\(hex32(r.cr3)) CR4=\(hex32(r.cr4))\n"
        }
        // A 64-bit QEMU prints debug registers 16 digits wide in every mode.
        for (index, value) in [r.dr0, r.dr1, r.dr2, r.dr3].enumerated() {
            out += "DR\(index)=\(Pad.hex(value, 16)) "
        }
        out += "\nDR6=\(Pad.hex(r.dr6, 16)) DR7=\(Pad.hex(r.dr7, 16))\n"
        return out
    }

    static func floatingPoint(_ r: CPURegisters, _ mode: Mode) -> String {
        let top = (r.fsw >> 11) & 7
        var out = "FCW=\(Pad.hex(UInt64(r.fcw), 4)) FSW=\(Pad.hex(UInt64(r.fsw), 4)) [ST=\(top)] "
            + "FTW=\(Pad.hex(UInt64(r.ftw), 2)) MXCSR=\(hex32(UInt64(r.mxcsr)))\n"
        for index in 0..<8 {
            let st: (mantissa: UInt64, exponent: UInt16) = index < r.st.count ? r.st[index] : (0, 0)
            out += "FPR\(index)=\(Pad.hex(st.mantissa, 16)) \(Pad.hex(UInt64(st.exponent), 4))"
            out += index & 1 == 1 ? "\n" : " "
        }
        // Without the XCR0 value the dump cannot tell whether AVX is on, so it shows the SSE
        // layout QEMU uses in that case.
        let count = mode.code64 ? 16 : 8
        for index in 0..<count {
            let xmm: (low: UInt64, high: UInt64) = index < r.xmm.count ? r.xmm[index] : (0, 0)
            out += "XMM\(Pad.zeros(String(index), 2))=\(Pad.hex(xmm.high, 16)) \(Pad.hex(xmm.low, 16))"
            out += index & 1 == 1 ? "\n" : " "
        }
        return out
    }

    private static func hex32(_ value: UInt64) -> String {
        Pad.hex(value & 0xffff_ffff, 8)
    }
}
