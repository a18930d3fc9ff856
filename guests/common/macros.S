# Constants and macros shared by every 64-bit guest. `.include`d, never assembled alone.
#
# Calling convention of the helpers in common/: System V (arguments in rdi, rsi, rdx; result
# in rax; rax, rcx, rdx, rsi, rdi, r8-r11 may be clobbered; rbx, rbp, r12-r15 are preserved).
# Helpers that can fail report it with the carry flag set.

.equ COM1,              0x3f8           # data (THR/RBR)
.equ COM1_LSR,          0x3fd
.equ LSR_DATA_READY,    0x01
.equ LSR_THR_EMPTY,     0x20            # transmit FIFO empty: 16 bytes may be written
.equ UART_FIFO_SIZE,    16

.equ DEBUG_EXIT_PORT,   0xf4            # isa-debug-exit: writing V ends the VMM with (V<<1)|1
.equ EXIT_EXCEPTION,    0x7f            # status 255
.equ EXIT_BAD_ARGS,     2               # status 5
.equ EXIT_MISMATCH,     1               # status 3

.equ PAGE_SIZE,         4096
.equ LARGE_PAGE,        0x200000
.equ PDE_2M_RW_USER,    0x87            # present, writable, user, 2 MiB page

# The GDT's segments (common/boot.S; smp.S copies them into the APs' GDT).
.equ SEL_KCODE,         0x08
.equ SEL_KDATA,         0x10
.equ SEL_UDATA,         0x1b            # 0x18 | RPL 3
.equ SEL_UCODE,         0x23            # 0x20 | RPL 3

# Entering long mode and ring 3.
.equ EFER_MSR,          0xc0000080
.equ EFER_LME,          0x100
.equ CR4_PAE,           0x20
.equ CR0_PG_PE,         0x80000001
.equ USER_RFLAGS,       0x3002          # IOPL 3 (in/out from ring 3), IF 0

# What ring 3 asks of ring 0. On the PVM host `int n` from ring 3 raises #UD and `syscall`
# arrives without a usable frame, so a request is `ud2` followed by the request byte, and the
# #UD handler in ring 0 recognises it. Only RING0_IDLE returns.
.equ RING0_HALT_FOREVER, 0              # cli; hlt forever
.equ RING0_TRIPLE_FAULT, 1              # load an empty IDT and raise #UD
.equ RING0_CLI_SPIN,     2              # cli; jmp . in ring 0
.equ RING0_IDLE,         3              # sti; hlt until an interrupt has been handled; back to ring 3

# Hardware interrupts (common/idle.S sets them up): the PICs deliver IRQ n at IRQ_VECTOR_BASE + n.
.equ IRQ_VECTOR_BASE,   32
.equ PIC1_COMMAND,      0x20
.equ PIC1_DATA,         0x21
.equ PIC2_COMMAND,      0xa0
.equ PIC2_DATA,         0xa1
.equ PIC_EOI,           0x20

# Offsets in struct hvm_start_info.
.equ SI_CMDLINE,        24
.equ SI_MEMMAP,         40
.equ SI_MEMMAP_ENTRIES, 48
.equ MEMMAP_ENTRY_SIZE, 24
.equ E820_RAM,          1

# Prints a string literal: PRINT "text". Escapes as in .ascii (\" \r \n).
.macro PRINT text:vararg
    .pushsection .rodata
.Lprint_text\@:
    .asciz \text
    .popsection
    lea .Lprint_text\@(%rip), %rdi
    call serial_puts
.endm

.macro RING0_REQUEST request
    ud2
    .byte \request
.endm

# rax = the 64-bit time stamp counter (clobbers rdx).
.macro RDTSC64
    rdtsc
    shl $32, %rdx
    or %rdx, %rax
.endm

# From real or 32-bit protected mode with paging off into long mode on the boot page tables:
# PAE, CR3 = pml4, EFER.LME, then paging and protection on (caches on: INIT leaves CD and NW
# set). The caller far-jumps to a 64-bit code segment next. Clobbers eax, ecx, edx.
.macro ENTER_LONG_MODE
    mov %cr4, %eax
    or $CR4_PAE, %eax
    mov %eax, %cr4
    mov $pml4, %eax
    mov %eax, %cr3
    mov $EFER_MSR, %ecx
    rdmsr
    or $EFER_LME, %eax
    wrmsr
    mov %cr0, %eax
    and $0x9fffffff, %eax
    or $CR0_PG_PE, %eax
    mov %eax, %cr0
.endm
