# smp.elf: every CPU checks its own share of memory. The boot CPU learns how many CPUs there
# are from CPUID (leaf 0xB's package level, else leaf 1's logical count), starts the others as
# real hardware would (INIT, SIPI, SIPI from its local APIC, to all but itself), and each CPU
# then sweeps its own slice of [base, base+size) as dirty.elf sweeps the whole range: sweep s
# finds s-1 in the first 8 bytes of each page (0 on fresh RAM) and writes s there.
#
# An AP starts in real mode at TRAMPOLINE, goes straight to long mode with the boot CPU's page
# tables, takes its CPU index from its initial APIC id (CPUID leaf 1 EBX[31:24]), loads its own
# TSS and stacks and drops to ring 3, all in about 40 instructions; the rest runs in ring 3.
.include "macros.S"

.equ DEFAULT_BASE,      4 << 20
.equ DEFAULT_SIZE,      16 << 20
.equ DEFAULT_EVERY,     16
.equ MAX_CPUS,          64
.equ EXIT_CPUS_MISSING, 3               # status 7: not every CPU came up in time
.equ START_TIMEOUT_TSC, 30000000000     # about 10 s at 3 GHz

.equ LAPIC_BASE,        0xfee00000
.equ LAPIC_SVR,         0xf0
.equ LAPIC_ICR_LOW,     0x300
.equ LAPIC_ICR_HIGH,    0x310
.equ SVR_ENABLE,        0x1ff           # APIC software-enabled, spurious vector 0xff
.equ ICR_INIT_OTHERS,   0x000c4500      # INIT, level assert, to all but self
.equ ICR_SIPI_OTHERS,   0x000c4600      # start-up IPI to all but self, | vector
.equ ICR_PENDING,       0x1000          # delivery status: send pending
.equ PDE_UNCACHED,      0x18            # PWT | PCD, for the APIC page
.equ LAPIC_PDE_OFFSET,  (LAPIC_BASE >> 21) * 8
.equ TRAMPOLINE,        0x8000          # APs start at vector 8 = 0x8000, below the image

.equ KERNEL_STACK_SHIFT, 11             # 2 KiB per AP: exceptions only
.equ USER_STACK_SHIFT,  12              # 4 KiB per AP
.equ TSS_SIZE,          104
.equ TSS_RSP0,          4
.equ TSS_IOMAP,         102
.equ IO_BITMAP_SIZE,    8192
.equ AP_SEL_TSS0,       0x28            # CPU n's TSS descriptor is at 0x28 + 16 n in ap_gdt

    .text
    .globl guest_main
guest_main:
    lea guest_name(%rip), %rax
    mov %rax, argument_owner(%rip)
    lea key_base(%rip), %rdi
    mov $DEFAULT_BASE, %esi
    call number_argument
    mov %rax, base(%rip)
    lea key_size(%rip), %rdi
    mov $DEFAULT_SIZE, %esi
    call number_argument
    mov %rax, size(%rip)
    lea key_every(%rip), %rdi
    mov $DEFAULT_EVERY, %esi
    call number_argument
    mov %rax, every(%rip)
    lea key_sweeps(%rip), %rdi
    xor %esi, %esi
    call number_argument
    mov %rax, sweeps(%rip)
    call count_cpus
    mov %rax, ncpus(%rip)

    lea why_every(%rip), %rdi
    cmpq $0, every(%rip)
    je bad_arguments
    mov base(%rip), %r12
    mov size(%rip), %r13
    mov %r12, %rdi
    mov %r13, %rsi
    call check_page_range
    lea why_cpus(%rip), %rdi
    cmpq $MAX_CPUS, ncpus(%rip)
    ja bad_arguments
    lea why_pages(%rip), %rdi
    mov %r13, %rax
    shr $12, %rax
    cmp ncpus(%rip), %rax
    jb bad_arguments

    PRINT "smp: "
    mov ncpus(%rip), %rdi
    call put_dec
    PRINT " cpus, base=0x"
    mov %r12, %rdi
    call put_hex
    PRINT " size=0x"
    mov %r13, %rdi
    call put_hex
    PRINT " pages="
    mov %r13, %rdi
    shr $12, %rdi
    call put_dec
    PRINT " every="
    mov every(%rip), %rdi
    call put_dec
    PRINT "\r\n"

    cmpq $1, ncpus(%rip)
    je 1f
    call prepare_aps
    call start_aps
1:  xor %edi, %edi
    jmp cpu_main

# rax = the number of logical CPUs in the package: leaf 0xB subleaf 1 (the core level, which
# counts every thread of the package), or leaf 1 EBX[23:16] where leaf 0xB is missing, or 1.
count_cpus:
    push %rbx
    xor %eax, %eax
    cpuid
    cmp $0xb, %eax
    jb 1f
    mov $0xb, %eax
    mov $1, %ecx
    cpuid
    movzwl %bx, %eax
    test %eax, %eax
    jnz 2f
1:  mov $1, %eax
    cpuid
    mov $1, %eax
    bt $28, %edx                        # HTT: EBX[23:16] is meaningful
    jnc 2f
    shr $16, %ebx
    movzbl %bl, %eax
    test %eax, %eax
    jnz 2f
    mov $1, %eax
2:  pop %rbx
    ret

# Copies the trampoline below 1 MiB, builds the APs' GDT (the boot GDT's segments, then one
# TSS descriptor per CPU), gives every TSS its kernel stack and the shared I/O bitmap (all
# ports allowed, as the boot TSS), and maps the local APIC. Ring 3 may write all of these:
# the identity map is user-writable.
prepare_aps:
    push %rbx
    lea ap_trampoline(%rip), %rsi
    mov $TRAMPOLINE, %edi
    mov $(ap_trampoline_end - ap_trampoline), %ecx
    rep movsb
    lea gdt(%rip), %rsi
    lea ap_gdt(%rip), %rdi
    mov $AP_SEL_TSS0, %ecx
    rep movsb
    movb $0xff, ap_io_bitmap + IO_BITMAP_SIZE(%rip)

    xor %ebx, %ebx                      # CPU n
1:  imul $TSS_SIZE, %ebx, %edi
    lea ap_tss(%rip), %rax
    add %rax, %rdi                      # rdi = TSS n
    lea 1(%rbx), %eax
    shl $KERNEL_STACK_SHIFT, %rax
    lea ap_kernel_stacks(%rip), %rdx
    add %rdx, %rax
    mov %rax, TSS_RSP0(%rdi)
    lea ap_io_bitmap(%rip), %rax
    sub %rdi, %rax
    mov %ax, TSS_IOMAP(%rdi)
    # Descriptor: limit[15:0], base[23:0], type 0x89 (present, available 64-bit TSS),
    # limit[19:16], base[31:24], then base[63:32].
    lea ap_io_bitmap + IO_BITMAP_SIZE(%rip), %rdx
    sub %rdi, %rdx                      # limit: up to and including the bitmap's last byte
    movzwl %dx, %eax
    mov %edi, %ecx
    and $0xffffff, %ecx
    shl $16, %rcx
    or %rcx, %rax
    movabs $0x0000890000000000, %rcx
    or %rcx, %rax
    mov %rdx, %rcx
    shr $16, %rcx
    and $0xf, %ecx
    shl $48, %rcx
    or %rcx, %rax
    mov %rdi, %rcx
    shr $24, %rcx
    movzbl %cl, %ecx
    shl $56, %rcx
    or %rcx, %rax
    mov %ebx, %ecx
    shl $4, %ecx
    lea ap_gdt + AP_SEL_TSS0(%rip), %rdx
    add %rcx, %rdx
    mov %rax, (%rdx)
    mov %rdi, %rax
    shr $32, %rax
    mov %rax, 8(%rdx)
    inc %ebx
    cmp $MAX_CPUS, %ebx
    jb 1b

    # A not-present entry is never cached, so no TLB flush is needed.
    mov $(LAPIC_BASE | PDE_2M_RW_USER | PDE_UNCACHED), %eax
    mov %rax, page_directories + LAPIC_PDE_OFFSET(%rip)
    pop %rbx
    ret

# INIT, SIPI, SIPI to every other CPU, then waits until all of them have checked in.
start_aps:
    push %rbx
    mov $LAPIC_BASE, %ebx
    movl $SVR_ENABLE, LAPIC_SVR(%rbx)
    movl $0, LAPIC_ICR_HIGH(%rbx)
    movl $ICR_INIT_OTHERS, LAPIC_ICR_LOW(%rbx)
    call wait_for_icr
    movl $(ICR_SIPI_OTHERS | TRAMPOLINE >> 12), LAPIC_ICR_LOW(%rbx)
    call wait_for_icr
    movl $(ICR_SIPI_OTHERS | TRAMPOLINE >> 12), LAPIC_ICR_LOW(%rbx)
    call wait_for_icr

    RDTSC64
    movabs $START_TIMEOUT_TSC, %rcx
    lea (%rax,%rcx), %rbx               # deadline
1:  mov cpus_up(%rip), %eax
    inc %eax                            # and this CPU
    cmp ncpus(%rip), %rax
    jae 2f
    pause
    RDTSC64
    cmp %rbx, %rax
    jb 1b
    call lock_serial
    call start_new_line
    PRINT "smp: only "
    mov cpus_up(%rip), %edi
    inc %edi
    call put_dec
    PRINT " of "
    mov ncpus(%rip), %rdi
    call put_dec
    PRINT " cpus started\r\n"
    mov $EXIT_CPUS_MISSING, %edi
    call debug_exit
2:  pop %rbx
    ret

# rbx = the local APIC.
wait_for_icr:
    testl $ICR_PENDING, LAPIC_ICR_LOW(%rbx)
    jz 1f
    pause
    jmp wait_for_icr
1:  ret

# Every CPU, index edi (0 = the boot CPU); never returns. r12 = index, r13/r14 = the slice,
# r15 = sweep number.
cpu_main:
    mov %edi, %r12d
    mov size(%rip), %rbp
    shr $12, %rbp                       # pages in all
    mov %rbp, %rax
    mul %r12
    divq ncpus(%rip)
    shl $12, %rax
    add base(%rip), %rax
    mov %rax, %r13                      # first page: base + pages * index / ncpus
    lea 1(%r12), %rax
    mul %rbp
    divq ncpus(%rip)
    shl $12, %rax
    add base(%rip), %rax
    mov %rax, %r14                      # end: base + pages * (index + 1) / ncpus

    call lock_serial
    call start_new_line
    PRINT "smp: cpu "
    mov %r12, %rdi
    call put_dec
    PRINT " up, pages 0x"
    mov %r13, %rdi
    call put_hex
    PRINT "-0x"
    mov %r14, %rdi
    call put_hex
    PRINT "\r\n"
    call unlock_serial
    test %r12, %r12
    jz 1f
    lock incl cpus_up(%rip)
    jmp .Lsweeps
1:  call lock_serial
    call start_new_line
    PRINT "smp: all "
    mov ncpus(%rip), %rdi
    call put_dec
    PRINT " cpus up\r\n"
    call unlock_serial

.Lsweeps:
    mov $1, %r15d
.Lsweep:
    mov %r13, %rsi
    lea -1(%r15), %rdx                  # expected
.Lpage:
    cmp %rdx, (%rsi)
    jne mismatch
    mov %r15, (%rsi)
    add $PAGE_SIZE, %rsi
    cmp %r14, %rsi
    jb .Lpage

    mov %r15, %rax
    xor %edx, %edx
    divq every(%rip)
    test %rdx, %rdx
    jnz 2f
    call lock_serial
    call start_new_line
    PRINT "cpu "
    mov %r12, %rdi
    call put_dec
    PRINT " sweep "
    mov %r15, %rdi
    call put_dec
    PRINT "\r\n"
    call unlock_serial
2:  cmp %r15, sweeps(%rip)
    je done
    inc %r15
    jmp .Lsweep

done:
    call lock_serial
    call start_new_line
    PRINT "smp: cpu "
    mov %r12, %rdi
    call put_dec
    PRINT " done "
    mov %r15, %rdi
    call put_dec
    PRINT " sweeps\r\n"
    call unlock_serial
    lock incl cpus_done(%rip)
    test %r12, %r12
    jnz idle
3:  mov cpus_done(%rip), %eax
    cmp ncpus(%rip), %rax
    jae 4f
    pause
    jmp 3b
4:  call lock_serial
    call start_new_line
    PRINT "smp: all "
    mov ncpus(%rip), %rdi
    call put_dec
    PRINT " cpus done\r\n"
    call unlock_serial
    # Idle without touching memory or ports (hlt would need ring 0 and interrupts).
idle:
    pause
    jmp idle

# rsi = page, rdx = expected value; r12 = this CPU.
mismatch:
    mov %rsi, %rbx
    mov %rdx, %rbp
    mov (%rsi), %r13
    call lock_serial
    call start_new_line
    PRINT "smp: cpu "
    mov %r12, %rdi
    call put_dec
    PRINT " MISMATCH at 0x"
    mov %rbx, %rdi
    call put_hex
    PRINT ": expected 0x"
    mov %rbp, %rdi
    call put_hex
    PRINT " found 0x"
    mov %r13, %rdi
    call put_hex
    PRINT "\r\n"
    mov $EXIT_MISMATCH, %edi
    call debug_exit

# The console is shared: one CPU writes a line at a time. Clobbers rax.
lock_serial:
    mov $1, %eax
    xchg %eax, serial_lock(%rip)
    test %eax, %eax
    jz 1f
    pause
    jmp lock_serial
1:  ret

unlock_serial:
    movl $0, serial_lock(%rip)
    ret

# Copied to TRAMPOLINE and entered there by each AP in real mode (CS = TRAMPOLINE >> 4, IP = 0).
# Real mode straight to long mode (PE and PG at once), then a far jump to 64-bit code.
    .code16
ap_trampoline:
    cli
    mov %cs, %ax
    mov %ax, %ds
    lgdtl ap_gdt_pointer - ap_trampoline
    ENTER_LONG_MODE
    ljmpl $SEL_KCODE, $ap_long_mode
ap_gdt_pointer:
    .word ap_gdt_end - ap_gdt - 1
    .long ap_gdt
ap_trampoline_end:

    .code64
ap_long_mode:
    mov $SEL_KDATA, %ax
    mov %ax, %ds
    mov %ax, %es
    mov %ax, %ss
    mov $1, %eax
    cpuid
    shr $24, %ebx                       # initial APIC id: this CPU's index
    cmp $MAX_CPUS, %ebx
    jae halt_forever
    lea 1(%rbx), %eax
    shl $KERNEL_STACK_SHIFT, %rax
    lea ap_kernel_stacks(%rip), %rsp
    add %rax, %rsp
    mov %ebx, %eax
    shl $4, %eax
    add $AP_SEL_TSS0, %eax
    ltr %ax
    lidt idt_pointer(%rip)
    lea 1(%rbx), %eax
    shl $USER_STACK_SHIFT, %rax
    lea ap_user_stacks(%rip), %rcx
    add %rcx, %rax
    pushq $SEL_UDATA
    push %rax
    pushq $USER_RFLAGS
    pushq $SEL_UCODE
    lea ap_ring3(%rip), %rax
    push %rax
    mov %ebx, %edi
    iretq

ap_ring3:
    jmp cpu_main

    .section .rodata
guest_name:     .asciz "smp"
key_base:       .asciz "base"
key_size:       .asciz "size"
key_every:      .asciz "every"
key_sweeps:     .asciz "sweeps"
why_every:      .asciz "every must be at least 1"
why_cpus:       .asciz "more than 64 CPUs"
why_pages:      .asciz "size gives some CPU no page (fewer pages than CPUs)"

    .data
    .balign 8
base:       .quad 0
size:       .quad 0
every:      .quad 0
sweeps:     .quad 0
ncpus:      .quad 1
cpus_up:    .long 0                     # APs that reached ring 3
cpus_done:  .long 0                     # CPUs that finished their sweeps
serial_lock: .long 0

    .bss
    .balign 16
ap_gdt:             .fill AP_SEL_TSS0 + MAX_CPUS * 16, 1, 0
ap_gdt_end:
    .balign 16
ap_tss:             .fill MAX_CPUS * TSS_SIZE, 1, 0
ap_io_bitmap:       .fill IO_BITMAP_SIZE + 1, 1, 0
    .balign 16
ap_kernel_stacks:   .fill MAX_CPUS << KERNEL_STACK_SHIFT, 1, 0
ap_user_stacks:     .fill MAX_CPUS << USER_STACK_SHIFT, 1, 0
