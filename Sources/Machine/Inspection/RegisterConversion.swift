import CKVM
import KVM

extension SegmentRegister {
    init(_ s: kvm_segment) {
        self.init(selector: s.selector, base: s.base, limit: s.limit, type: s.type, present: s.present != 0,
                  dpl: s.dpl, db: s.db != 0, s: s.s != 0, l: s.l != 0, g: s.g != 0, avl: s.avl != 0,
                  unusable: s.unusable != 0)
    }
}

extension CPURegisters {
    init(regs r: kvm_regs, sregs s: kvm_sregs, fpu f: kvm_fpu, debug d: kvm_debugregs) {
        self.init()
        rax = r.rax; rbx = r.rbx; rcx = r.rcx; rdx = r.rdx
        rsi = r.rsi; rdi = r.rdi; rbp = r.rbp; rsp = r.rsp
        r8 = r.r8; r9 = r.r9; r10 = r.r10; r11 = r.r11
        r12 = r.r12; r13 = r.r13; r14 = r.r14; r15 = r.r15
        rip = r.rip; rflags = r.rflags
        es = .init(s.es); cs = .init(s.cs); ss = .init(s.ss); ds = .init(s.ds)
        fs = .init(s.fs); gs = .init(s.gs); ldt = .init(s.ldt); tr = .init(s.tr)
        gdt = DescriptorTable(base: s.gdt.base, limit: s.gdt.limit)
        idt = DescriptorTable(base: s.idt.base, limit: s.idt.limit)
        cr0 = s.cr0; cr2 = s.cr2; cr3 = s.cr3; cr4 = s.cr4; cr8 = s.cr8
        efer = s.efer; apicBase = s.apic_base
        dr0 = d.db.0; dr1 = d.db.1; dr2 = d.db.2; dr3 = d.db.3; dr6 = d.dr6; dr7 = d.dr7
        fcw = f.fcw; fsw = f.fsw; ftw = f.ftwx; mxcsr = f.mxcsr
        let fpr = PlainData.bytes(of: f.fpr)   // 8 registers x 16 bytes
        let xmmBytes = PlainData.bytes(of: f.xmm)  // 16 registers x 16 bytes
        st = (0..<8).map { i in (Self.le64(fpr, i * 16), UInt16(Self.le64(fpr, i * 16 + 8) & 0xffff)) }
        xmm = (0..<16).map { i in (Self.le64(xmmBytes, i * 16), Self.le64(xmmBytes, i * 16 + 8)) }
    }

    private static func le64(_ b: [UInt8], _ at: Int) -> UInt64 {
        (0..<8).reversed().reduce(UInt64(0)) { $0 << 8 | UInt64(b[at + $1]) }
    }
}
