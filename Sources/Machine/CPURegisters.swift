/// A plain snapshot of one vCPU's registers, for people (`info registers`) and for
/// translating guest virtual addresses. The KVM layer fills it; nothing here touches KVM.
public struct SegmentRegister: Equatable, Sendable {
    public var selector: UInt16 = 0
    public var base: UInt64 = 0
    public var limit: UInt32 = 0
    /// Descriptor type field (4 bits), as in the descriptor's access byte.
    public var type: UInt8 = 0
    public var present = false
    public var dpl: UInt8 = 0
    /// Default operation size (D/B bit).
    public var db = false
    /// Code or data segment (S bit), as opposed to a system segment.
    public var s = false
    /// 64-bit code segment (L bit).
    public var l = false
    /// Granularity (G bit).
    public var g = false
    public var avl = false
    public var unusable = false

    public init() {}
    public init(selector: UInt16, base: UInt64, limit: UInt32, type: UInt8, present: Bool, dpl: UInt8,
                db: Bool, s: Bool, l: Bool, g: Bool, avl: Bool = false, unusable: Bool = false) {
        self.selector = selector; self.base = base; self.limit = limit; self.type = type
        self.present = present; self.dpl = dpl; self.db = db; self.s = s; self.l = l; self.g = g
        self.avl = avl; self.unusable = unusable
    }
}

public struct DescriptorTable: Equatable, Sendable {
    public var base: UInt64 = 0
    public var limit: UInt16 = 0
    public init(base: UInt64 = 0, limit: UInt16 = 0) { self.base = base; self.limit = limit }
}

public struct CPURegisters: Equatable, Sendable {
    public var rax: UInt64 = 0, rbx: UInt64 = 0, rcx: UInt64 = 0, rdx: UInt64 = 0
    public var rsi: UInt64 = 0, rdi: UInt64 = 0, rbp: UInt64 = 0, rsp: UInt64 = 0
    public var r8: UInt64 = 0, r9: UInt64 = 0, r10: UInt64 = 0, r11: UInt64 = 0
    public var r12: UInt64 = 0, r13: UInt64 = 0, r14: UInt64 = 0, r15: UInt64 = 0
    public var rip: UInt64 = 0
    public var rflags: UInt64 = 0

    public var es = SegmentRegister(), cs = SegmentRegister(), ss = SegmentRegister()
    public var ds = SegmentRegister(), fs = SegmentRegister(), gs = SegmentRegister()
    public var ldt = SegmentRegister(), tr = SegmentRegister()
    public var gdt = DescriptorTable(), idt = DescriptorTable()

    public var cr0: UInt64 = 0, cr2: UInt64 = 0, cr3: UInt64 = 0, cr4: UInt64 = 0, cr8: UInt64 = 0
    public var efer: UInt64 = 0
    public var apicBase: UInt64 = 0

    public var dr0: UInt64 = 0, dr1: UInt64 = 0, dr2: UInt64 = 0, dr3: UInt64 = 0
    public var dr6: UInt64 = 0, dr7: UInt64 = 0

    /// x87 control, status and abridged tag words, and the SSE control register.
    public var fcw: UInt16 = 0, fsw: UInt16 = 0, ftw: UInt8 = 0
    public var mxcsr: UInt32 = 0
    /// x87 registers ST0..ST7 as 80-bit values: (low 64 bits, high 16 bits).
    public var st: [(mantissa: UInt64, exponent: UInt16)] = Array(repeating: (0, 0), count: 8)
    /// XMM0..XMM15 as (low, high) quadwords.
    public var xmm: [(low: UInt64, high: UInt64)] = Array(repeating: (0, 0), count: 16)

    /// True when the CPU runs in 64-bit mode (EFER.LMA and CS.L), which selects QEMU's 64-bit layout.
    public var isLongMode: Bool { efer & (1 << 10) != 0 && cs.l }

    public init() {}

    public static func == (a: CPURegisters, b: CPURegisters) -> Bool {
        a.generalPurpose == b.generalPurpose && a.rip == b.rip && a.rflags == b.rflags
            && [a.es, a.cs, a.ss, a.ds, a.fs, a.gs, a.ldt, a.tr] == [b.es, b.cs, b.ss, b.ds, b.fs, b.gs, b.ldt, b.tr]
            && a.gdt == b.gdt && a.idt == b.idt
            && [a.cr0, a.cr2, a.cr3, a.cr4, a.cr8, a.efer, a.apicBase] == [b.cr0, b.cr2, b.cr3, b.cr4, b.cr8, b.efer, b.apicBase]
            && [a.dr0, a.dr1, a.dr2, a.dr3, a.dr6, a.dr7] == [b.dr0, b.dr1, b.dr2, b.dr3, b.dr6, b.dr7]
            && a.fcw == b.fcw && a.fsw == b.fsw && a.ftw == b.ftw && a.mxcsr == b.mxcsr
            && a.st.elementsEqual(b.st, by: { $0 == $1 }) && a.xmm.elementsEqual(b.xmm, by: { $0 == $1 })
    }

    private var generalPurpose: [UInt64] {
        [rax, rbx, rcx, rdx, rsi, rdi, rbp, rsp, r8, r9, r10, r11, r12, r13, r14, r15]
    }
}
