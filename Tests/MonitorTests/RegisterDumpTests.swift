import Machine
import XCTest
@testable import Monitor

final class RegisterDumpTests: XCTestCase {
    /// A ring-3 64-bit guest as the project's test guests run.
    static func longModeRegisters() -> CPURegisters {
        var r = CPURegisters()
        r.rax = 0x1122334455667788; r.rbx = 1; r.rcx = 2; r.rdx = 3
        r.rsi = 4; r.rdi = 5; r.rbp = 6; r.rsp = 0x7ff0
        r.r8 = 8; r.r9 = 9; r.r10 = 10; r.r11 = 11; r.r12 = 12; r.r13 = 13; r.r14 = 14; r.r15 = 0xffffffffffffffff
        r.rip = 0x401000
        r.rflags = 0x3246 // IOPL=3, IF, ZF, PF, reserved bit 1
        r.cs = SegmentRegister(selector: 0x2b, base: 0, limit: 0xffffffff, type: 0xb, present: true, dpl: 3,
                               db: false, s: true, l: true, g: true)
        let data = SegmentRegister(selector: 0x23, base: 0, limit: 0xffffffff, type: 0x3, present: true, dpl: 3,
                                   db: true, s: true, l: false, g: true)
        r.ss = data; r.ds = data; r.es = data
        r.fs = SegmentRegister(selector: 0, base: 0x7f0000001000, limit: 0xffff, type: 0x3, present: false, dpl: 0,
                               db: false, s: true, l: false, g: false, unusable: true)
        r.gs = r.fs
        r.ldt = SegmentRegister(selector: 0, base: 0, limit: 0xffff, type: 0x2, present: true, dpl: 0,
                                db: false, s: false, l: false, g: false)
        r.tr = SegmentRegister(selector: 0x30, base: 0x5000, limit: 0x67, type: 0xb, present: true, dpl: 0,
                               db: false, s: false, l: false, g: false)
        r.gdt = DescriptorTable(base: 0x2000, limit: 0x3f)
        r.idt = DescriptorTable(base: 0x3000, limit: 0xfff)
        r.cr0 = 0x80050033; r.cr2 = 0xdead000; r.cr3 = 0x10000; r.cr4 = 0x6a0
        r.efer = 0xd01
        r.dr6 = 0xffff0ff0; r.dr7 = 0x400
        r.fcw = 0x37f; r.fsw = 0x3800; r.ftw = 0x80; r.mxcsr = 0x1f80
        r.st[0] = (0x8000000000000000, 0x3fff)
        r.xmm[1] = (low: 0x0123456789abcdef, high: 0xfedcba9876543210)
        return r
    }

    func testLongModeLayout() {
        let expected = """
            RAX=1122334455667788 RBX=0000000000000001 RCX=0000000000000002 RDX=0000000000000003
            RSI=0000000000000004 RDI=0000000000000005 RBP=0000000000000006 RSP=0000000000007ff0
            R8 =0000000000000008 R9 =0000000000000009 R10=000000000000000a R11=000000000000000b
            R12=000000000000000c R13=000000000000000d R14=000000000000000e R15=ffffffffffffffff
            RIP=0000000000401000 RFL=00003246 [---Z-P-] CPL=3 II=0 A20=1 SMM=0 HLT=0
            ES =0023 0000000000000000 ffffffff 00c0f300 DPL=3 DS   [-WA]
            CS =002b 0000000000000000 ffffffff 00a0fb00 DPL=3 CS64 [-RA]
            SS =0023 0000000000000000 ffffffff 00c0f300 DPL=3 DS   [-WA]
            DS =0023 0000000000000000 ffffffff 00c0f300 DPL=3 DS   [-WA]
            FS =0000 00007f0000001000 0000ffff 00001300
            GS =0000 00007f0000001000 0000ffff 00001300
            LDT=0000 0000000000000000 0000ffff 00008200 DPL=0 LDT
            TR =0030 0000000000005000 00000067 00008b00 DPL=0 TSS64-busy
            GDT=     0000000000002000 0000003f
            IDT=     0000000000003000 00000fff
            CR0=80050033 CR2=000000000dead000 CR3=0000000000010000 CR4=000006a0
            DR0=0000000000000000 DR1=0000000000000000 DR2=0000000000000000 DR3=0000000000000000 
            DR6=00000000ffff0ff0 DR7=0000000000000400
            EFER=0000000000000d01
            FCW=037f FSW=3800 [ST=7] FTW=80 MXCSR=00001f80
            FPR0=8000000000000000 3fff FPR1=0000000000000000 0000
            FPR2=0000000000000000 0000 FPR3=0000000000000000 0000
            FPR4=0000000000000000 0000 FPR5=0000000000000000 0000
            FPR6=0000000000000000 0000 FPR7=0000000000000000 0000
            XMM00=0000000000000000 0000000000000000 XMM01=fedcba9876543210 0123456789abcdef
            XMM02=0000000000000000 0000000000000000 XMM03=0000000000000000 0000000000000000
            XMM04=0000000000000000 0000000000000000 XMM05=0000000000000000 0000000000000000
            XMM06=0000000000000000 0000000000000000 XMM07=0000000000000000 0000000000000000
            XMM08=0000000000000000 0000000000000000 XMM09=0000000000000000 0000000000000000
            XMM10=0000000000000000 0000000000000000 XMM11=0000000000000000 0000000000000000
            XMM12=0000000000000000 0000000000000000 XMM13=0000000000000000 0000000000000000
            XMM14=0000000000000000 0000000000000000 XMM15=0000000000000000 0000000000000000

            """
        XCTAssertEqual(RegisterDumpFormatter.dump(Self.longModeRegisters()), expected)
    }

    func testRealModeLayoutAfterReset() {
        // The x86 reset state: real mode, so attributes are not decoded. The expected lines are
        // what QEMU 7.2 (Debian) prints for `info registers` at reset, EDX aside.
        var r = CPURegisters()
        r.rdx = 0x600; r.rip = 0xfff0; r.rflags = 0x2
        r.cs = SegmentRegister(selector: 0xf000, base: 0xffff0000, limit: 0xffff, type: 0xb, present: true, dpl: 0,
                               db: false, s: true, l: false, g: false)
        let data = SegmentRegister(selector: 0, base: 0, limit: 0xffff, type: 0x3, present: true, dpl: 0,
                                   db: false, s: true, l: false, g: false)
        r.ds = data; r.es = data; r.ss = data; r.fs = data; r.gs = data
        r.ldt = SegmentRegister(selector: 0, base: 0, limit: 0xffff, type: 0x2, present: true, dpl: 0,
                                db: false, s: false, l: false, g: false)
        r.tr = SegmentRegister(selector: 0, base: 0, limit: 0xffff, type: 0xb, present: true, dpl: 0,
                               db: false, s: false, l: false, g: false)
        r.idt = DescriptorTable(base: 0, limit: 0xffff)
        r.gdt = DescriptorTable(base: 0, limit: 0xffff)
        r.cr0 = 0x60000010
        r.dr6 = 0xffff0ff0; r.dr7 = 0x400
        r.fcw = 0x37f; r.mxcsr = 0x1f80
        let dump = RegisterDumpFormatter.dump(r)
        let lines = dump.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        XCTAssertEqual(Array(lines.prefix(20)), [
            "EAX=00000000 EBX=00000000 ECX=00000000 EDX=00000600",
            "ESI=00000000 EDI=00000000 EBP=00000000 ESP=00000000",
            "EIP=0000fff0 EFL=00000002 [-------] CPL=0 II=0 A20=1 SMM=0 HLT=0",
            "ES =0000 00000000 0000ffff 00009300",
            "CS =f000 ffff0000 0000ffff 00009b00",
            "SS =0000 00000000 0000ffff 00009300",
            "DS =0000 00000000 0000ffff 00009300",
            "FS =0000 00000000 0000ffff 00009300",
            "GS =0000 00000000 0000ffff 00009300",
            "LDT=0000 00000000 0000ffff 00008200",
            "TR =0000 00000000 0000ffff 00008b00",
            "GDT=     00000000 0000ffff",
            "IDT=     00000000 0000ffff",
            "CR0=60000010 CR2=00000000 CR3=00000000 CR4=00000000",
            "DR0=0000000000000000 DR1=0000000000000000 DR2=0000000000000000 DR3=0000000000000000 ",
            "DR6=00000000ffff0ff0 DR7=0000000000000400",
            "EFER=0000000000000000",
            "FCW=037f FSW=0000 [ST=0] FTW=00 MXCSR=00001f80",
            "FPR0=0000000000000000 0000 FPR1=0000000000000000 0000",
            "FPR2=0000000000000000 0000 FPR3=0000000000000000 0000",
        ])
        // Eight XMM registers outside 64-bit mode, two a line, then the final newline.
        XCTAssertEqual(lines.filter { $0.hasPrefix("XMM") }.count, 4)
        XCTAssertEqual(lines.last, "")
        XCTAssertFalse(dump.contains("XMM08"))
    }

    func testProtectedMode32SegmentsAndSystemTypes() {
        var r = CPURegisters()
        r.cr0 = 0x11
        r.rflags = 0x8d5 // O, S, Z, A, P, C
        r.cs = SegmentRegister(selector: 0x08, base: 0, limit: 0xffffffff, type: 0xf, present: true, dpl: 0,
                               db: true, s: true, l: false, g: true)
        r.ds = SegmentRegister(selector: 0x10, base: 0, limit: 0xffff, type: 0x5, present: true, dpl: 0,
                               db: false, s: true, l: false, g: false)
        r.tr = SegmentRegister(selector: 0x18, base: 0x1000, limit: 0x67, type: 0x9, present: true, dpl: 0,
                               db: false, s: false, l: false, g: false)
        let dump = RegisterDumpFormatter.dump(r)
        XCTAssertTrue(dump.contains("EIP=00000000 EFL=000008d5 [-OSZAPC] CPL=0"), dump)
        XCTAssertTrue(dump.contains("\nCS =0008 00000000 ffffffff 00c09f00 DPL=0 CS32 [CRA]\n"), dump)
        XCTAssertTrue(dump.contains("\nDS =0010 00000000 0000ffff 00009500 DPL=0 DS16 [E-A]\n"), dump)
        XCTAssertTrue(dump.contains("\nTR =0018 00001000 00000067 00008900 DPL=0 TSS32-avl\n"), dump)
        XCTAssertTrue(dump.contains("\nES =0000 00000000 00000000 00000000\n"), dump)
    }

    func testInfoRegistersCommand() {
        let backend = FakeMonitorBackend(cpuCount: 2)
        backend.registersByCPU[1] = Self.longModeRegisters()
        let monitor = CommandInterpreter(backend: backend)
        let cpu0 = RegisterDumpFormatter.dump(backend.registersByCPU[0])
        let cpu1 = RegisterDumpFormatter.dump(backend.registersByCPU[1])
        XCTAssertEqual(monitor.execute("info registers").output, "\nCPU#0\n" + cpu0)
        XCTAssertEqual(monitor.execute("info registers 1").output, "\nCPU#1\n" + cpu1)
        XCTAssertEqual(monitor.execute("info registers -a").output, "\nCPU#0\n" + cpu0 + "\nCPU#1\n" + cpu1)
        _ = monitor.execute("cpu 1")
        XCTAssertEqual(monitor.execute("info registers").output, "\nCPU#1\n" + cpu1)
        XCTAssertEqual(monitor.execute("info registers 5").error, "CPU#5 not available")
    }
}
