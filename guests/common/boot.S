# PVH entry: 32-bit protected mode, paging off, EBX = struct hvm_start_info.
# Builds identity page tables, GDT, TSS and IDT, enters long mode and drops to ring 3,
# where the guest's `guest_main` runs. Ring 0 and 32-bit code are emulated (slow) on the
# PVM host, so everything that can wait runs in ring 3 instead (the IDT is filled there).
.include "macros.S"

.equ PVH_MAGIC,         0x336ec578
.equ XEN_ELFNOTE_PHYS32_ENTRY, 18

.equ SEL_TSS,           0x28

.equ PTE_PRESENT_RW_USER, 0x07
.equ MAX_PDES,          32768           # 64 GiB of 2 MiB pages
.equ MIN_PDPT_ENTRIES,  4               # always cover 4 GiB, so 0xd0000000 can be mapped
.equ MMIO_PROBE_ADDR,   0xd0000000      # mapped for faults.elf's mmio mode

.equ UD_VECTOR,         6
.equ UD2_OPCODE,        0x0b0f          # 0f 0b, read as a little-endian word

    .section .note.Xen, "a"
    .balign 4
    .long 4                             # namesz ("Xen\0")
    .long 4                             # descsz
    .long XEN_ELFNOTE_PHYS32_ENTRY
    .asciz "Xen"
    .long pvh_start32

    .section .text.boot, "ax"
    .code32
    .globl pvh_start32
pvh_start32:
    cld
    cmpl $PVH_MAGIC, (%ebx)
    jne 1f
    mov %ebx, start_info
1:
    # COM1: IER 0 (no interrupts), FCR 7 (enable and clear FIFOs), LCR 3 (8N1).
    mov $0x3f9, %dx
    xor %al, %al
    out %al, %dx
    inc %dx
    mov $7, %al
    out %al, %dx
    inc %dx
    mov $3, %al
    out %al, %dx

    # Highest end of RAM in the memory map, as edx:eax; 4 GiB if there is no map.
    xor %eax, %eax
    mov $1, %edx
    mov start_info, %ebx
    test %ebx, %ebx
    jz .Lhave_end
    mov SI_MEMMAP_ENTRIES(%ebx), %ecx
    jecxz .Lhave_end
    cmpl $1, 4(%ebx)                    # memmap fields exist from version 1 on
    jb .Lhave_end
    mov SI_MEMMAP(%ebx), %esi
    xor %edx, %edx
.Lnext_entry:
    cmpl $E820_RAM, 16(%esi)
    jne 2f
    mov (%esi), %edi
    mov 4(%esi), %ebp
    add 8(%esi), %edi
    adc 12(%esi), %ebp
    cmp %edx, %ebp
    jb 2f
    ja 3f
    cmp %eax, %edi
    jbe 2f
3:  mov %edi, %eax
    mov %ebp, %edx
2:  add $MEMMAP_ENTRY_SIZE, %esi
    loop .Lnext_entry
.Lhave_end:
    mov %eax, ram_end
    mov %edx, ram_end + 4

    # 2 MiB pages: all RAM rounded up, plus one page beyond (mmio probes), capped at 64 GiB.
    add $(LARGE_PAGE - 1), %eax
    adc $0, %edx
    shrd $21, %edx, %eax
    inc %eax
    cmp $MAX_PDES, %eax
    jbe 4f
    mov $MAX_PDES, %eax
4:  mov %eax, %ecx
    mov $page_directories, %edi
    mov $PDE_2M_RW_USER, %eax
    xor %edx, %edx
.Lfill_pde:
    mov %eax, (%edi)
    mov %edx, 4(%edi)
    add $8, %edi
    add $LARGE_PAGE, %eax
    adc $0, %edx
    loop .Lfill_pde
    movl $(MMIO_PROBE_ADDR | PDE_2M_RW_USER), page_directories + (MMIO_PROBE_ADDR >> 21) * 8

    # One PDPT entry per page directory in use (at least the first 4 GiB).
    sub $page_directories, %edi
    add $(PAGE_SIZE - 1), %edi
    shr $12, %edi
    mov $MIN_PDPT_ENTRIES, %ecx
    cmp %ecx, %edi
    jbe 5f
    mov %edi, %ecx
5:  mov $pdpt, %edi
    mov $(page_directories + PTE_PRESENT_RW_USER), %eax
.Lfill_pdpte:
    mov %eax, (%edi)
    add $8, %edi
    add $PAGE_SIZE, %eax
    loop .Lfill_pdpte
    movl $(pdpt + PTE_PRESENT_RW_USER), pml4

    # The TSS base is split over three descriptor fields; the assembler cannot split a relocation.
    mov $tss, %eax
    mov %ax, gdt_tss + 2
    shr $16, %eax
    mov %al, gdt_tss + 4
    mov %ah, gdt_tss + 7

    lgdt gdt_pointer
    ENTER_LONG_MODE
    ljmp $SEL_KCODE, $long_mode

    .code64
long_mode:
    mov $SEL_KDATA, %ax
    mov %ax, %ds
    mov %ax, %es
    mov %ax, %ss
    lea kernel_stack_top(%rip), %rsp
    mov $SEL_TSS, %ax
    ltr %ax
    lidt idt_pointer(%rip)
    pushq $SEL_UDATA
    lea user_stack_top(%rip), %rax
    push %rax
    pushq $USER_RFLAGS
    pushq $SEL_UCODE
    lea user_start(%rip), %rax
    push %rax
    iretq

# Ring 0 handlers. Each exception stub is 16 bytes so the IDT can be filled in a loop.
    .balign 16
exception_stubs:
    .set vector, 0
    .rept 32
    .balign 16
    .if (vector == 8 || (vector >= 10 && vector <= 14) || vector == 17 || vector == 21 || vector == 29 || vector == 30) == 0
    pushq $0                            # no error code: keep one frame layout
    .endif
    pushq $vector
    jmp exception_common
    .set vector, vector + 1
    .endr

# Stack: vector, error code, rip, cs, rflags, rsp, ss.
exception_common:
    cmpq $UD_VECTOR, (%rsp)
    jne 1f
    testb $3, 24(%rsp)
    jz 1f                               # only ring 3 makes requests
    mov 16(%rsp), %rax
    cmpw $UD2_OPCODE, (%rax)
    je ring0_request
1:
    PRINT "\r\nguest: exception "
    mov (%rsp), %rdi
    call put_dec
    PRINT " at rip=0x"
    mov 16(%rsp), %rdi
    call put_hex
    PRINT "\r\n"
    mov $EXIT_EXCEPTION, %al
    out %al, $DEBUG_EXIT_PORT
    # No debug-exit device: the write was ignored.
halt_forever:
    cli
1:  hlt
    jmp 1b

# Ring 3's way into ring 0 (see RING0_REQUEST): rax = the ud2, followed by the request byte.
# Requests other than RING0_IDLE never return.
ring0_request:
    movzbl 2(%rax), %eax
    cmp $RING0_IDLE, %eax
    je idle
    cmp $RING0_TRIPLE_FAULT, %eax
    je triple_fault
    cmp $RING0_CLI_SPIN, %eax
    je cli_spin
    jmp halt_forever

triple_fault:
    lidt empty_idt_pointer(%rip)
    ud2                                 # no IDT: #UD, then #DF, then shutdown

cli_spin:
    cli
    jmp .

# Waits for an interrupt with interrupts enabled (sti holds them off until hlt has begun, so
# one already pending wakes it at once), then returns to ring 3 after the request, where
# interrupts are off again (its RFLAGS has IF 0).
idle:
    sti
    hlt
    cli
    addq $3, 16(%rsp)                   # past ud2 and the request byte
    add $16, %rsp                       # vector and error code
    iretq

# IRQs 0-15 (vectors 32-47): nothing to do but acknowledge; waking the idle loop is the point.
irq_handler:
    push %rax
    mov $PIC_EOI, %al
    out %al, $PIC2_COMMAND
    out %al, $PIC1_COMMAND
    pop %rax
    iretq

# Ring 3 from here on.
    .text
user_start:
    lea idt(%rip), %rdi
    lea exception_stubs(%rip), %rsi
    mov $32, %ecx
1:  mov $0x8e, %edx                     # present interrupt gate, DPL 0
    call set_gate
    add $16, %rsi
    loop 1b
    lea irq_handler(%rip), %rsi
    mov $16, %ecx
2:  mov $0x8e, %edx
    call set_gate
    loop 2b
    call guest_main
    RING0_REQUEST RING0_HALT_FOREVER

# Writes the gate at rdi for handler rsi with type/attributes dl; advances rdi to the next gate.
set_gate:
    mov %esi, %eax
    and $0xffff, %eax
    or $(SEL_KCODE << 16), %eax
    mov %eax, (%rdi)
    mov %esi, %eax
    and $0xffff0000, %eax
    movzbl %dl, %r8d
    shl $8, %r8d
    or %r8d, %eax
    mov %eax, 4(%rdi)
    mov %rsi, %rax
    shr $32, %rax
    mov %eax, 8(%rdi)
    movl $0, 12(%rdi)
    add $16, %rdi
    ret

    .data
    .balign 8
    .globl start_info, ram_end
start_info:     .quad 0                 # struct hvm_start_info, or 0 if the magic was wrong
ram_end:        .quad 0                 # highest end of RAM in the memory map

    .balign 16
gdt:
    .quad 0
    .quad 0x00af9a000000ffff            # 0x08 kernel code, 64-bit
    .quad 0x00cf92000000ffff            # 0x10 kernel data
    .quad 0x00cff2000000ffff            # 0x18 user data, DPL 3
    .quad 0x00affa000000ffff            # 0x20 user code, 64-bit, DPL 3
gdt_tss:
    .quad 0x0000890000000000 + TSS_LIMIT # 0x28 available 64-bit TSS, base patched at boot
    .quad 0
gdt_end:
gdt_pointer:
    .word gdt_end - gdt - 1
    .quad gdt

    .balign 8
idt_pointer:
    .word 256 * 16 - 1
    .quad idt
empty_idt_pointer:
    .word 0
    .quad 0

    .balign 16
tss:
    .long 0
    .quad kernel_stack_top              # RSP0: ring-3 exceptions and int gates land here
    .fill 88, 1, 0
    .word 0
    .word tss_io_bitmap - tss
tss_io_bitmap:
    .fill 8192, 1, 0                    # every port allowed in ring 3 (PVM ignores IOPL 3)
    .byte 0xff                          # the bitmap must end with a byte of ones
tss_end:
    .equ TSS_LIMIT, tss_end - tss - 1

    .bss
    .globl gdt, pml4, page_directories, idt_pointer, halt_forever
    .balign PAGE_SIZE
pml4:               .fill PAGE_SIZE, 1, 0
pdpt:               .fill PAGE_SIZE, 1, 0
page_directories:   .fill MAX_PDES * 8, 1, 0
idt:                .fill 256 * 16, 1, 0
    .balign 16
                    .fill 8192, 1, 0
kernel_stack_top:
                    .fill 16384, 1, 0
user_stack_top:
