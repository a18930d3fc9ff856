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
