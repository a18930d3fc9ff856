# faults.elf: a guest that misbehaves on purpose, so the VMM's handling of it can be tested.
# mode= selects how: exit, triple, flood, ports, mmio, cli-spin, panic, reset.
.include "macros.S"

.equ MMIO_PROBE_ADDR,       0xd0000000  # mapped by boot.S
.equ MMIO_ACCESSES_PER_PASS, 1000

    .text
    .globl guest_main
guest_main:
    lea key_mode(%rip), %rdi
    call cmdline_find
    jnc 1f
    xor %edx, %edx                      # absent: an empty mode
1:  mov %rax, %r12                      # mode
    mov %rdx, %r13                      # its length
    PRINT "faults: mode="
    mov %r12, %rdi
    mov %r13, %rsi
    call serial_write
    PRINT "\r\n"

    lea modes(%rip), %rbx
.Lnext_mode:
    mov (%rbx), %rdi                    # name
    test %rdi, %rdi
    jz unknown_mode
    call mode_is
    je 2f
    add $16, %rbx
    jmp .Lnext_mode
2:  jmp *8(%rbx)

# ZF set if the mode (r12, r13) equals the NUL-terminated name rdi.
mode_is:
    xor %ecx, %ecx
1:  movzbl (%rdi,%rcx), %eax
    cmp %r13, %rcx
    je 2f
    test %eax, %eax
    jz 3f                               # name shorter than the mode
    cmp (%r12,%rcx), %al
    jne 3f
    inc %rcx
    jmp 1b
2:  test %eax, %eax                     # equal if the name ends here too
    ret
3:  or $1, %ecx                         # clears ZF
    ret

unknown_mode:
    PRINT "faults: bad arguments: unknown mode (exit, triple, flood, ports, mmio, cli-spin, panic, reset)\r\n"
    mov $EXIT_BAD_ARGS, %edi
    call debug_exit

mode_exit:
    lea key_code(%rip), %rdi
    call cmdline_find
    jc 2f
    mov %rax, %rdi
    mov %rdx, %rsi
    call parse_number
    jnc 1f
    PRINT "faults: bad arguments: code is not a number\r\n"
    mov $EXIT_BAD_ARGS, %eax
    jmp 1f
2:  xor %eax, %eax
1:  mov %eax, %edi
    call debug_exit

mode_triple:
    PRINT "faults: triple fault now\r\n"
    RING0_REQUEST RING0_TRIPLE_FAULT

mode_flood:
    mov $1, %ebx
1:  PRINT "flood "
    mov %rbx, %rdi
    call put_dec
    mov $'\n', %edi
    call serial_putc
    inc %rbx
    jmp 1b

# Every port but the debug exit, the keyboard controller (reset) and COM1: read, then write
# back what was read; every 256th port also 16 and 32 bits wide.
mode_ports:
    xor %ebx, %ebx
1:  cmp $0xf4, %ebx
    jb 2f
    cmp $0xf7, %ebx
    jbe 4f
2:  cmp $0x64, %ebx
    je 4f
    cmp $0x3f8, %ebx
    jb 3f
    cmp $0x3ff, %ebx
    jbe 4f
3:  mov %ebx, %edx
    in %dx, %al
    out %al, %dx
    test $0xff, %bl
    jnz 4f
    in %dx, %ax
    out %ax, %dx
    in %dx, %eax
    out %eax, %dx
4:  inc %ebx
    cmp $0x10000, %ebx
    jb 1b
    PRINT "faults: ports done\r\n"
5:  pause
    jmp 5b

# Reads and writes guest-physical addresses with no RAM behind them: just past the end of RAM
# and 0xd0000000.
mode_mmio:
    mov ram_end(%rip), %r12
    mov $MMIO_PROBE_ADDR, %r13d
    xor %ebx, %ebx                      # passes
1:  mov $(MMIO_ACCESSES_PER_PASS / 4), %ebp
2:  mov (%r12), %rax
    mov %rbp, (%r12)
    mov (%r13), %eax
    mov %ebp, (%r13)
    dec %ebp
    jnz 2b
    inc %rbx
    PRINT "faults: mmio pass "
    mov %rbx, %rdi
    call put_dec
    PRINT "\r\n"
    jmp 1b

mode_cli_spin:
    RING0_REQUEST RING0_CLI_SPIN

mode_panic:
    PRINT "faults: panic\r\n"
    RING0_REQUEST RING0_HALT_FOREVER

# Pulses the reset line through the keyboard controller, as PC operating systems reboot. The
# machine boots this guest again, which resets again: a test counts the boots.
mode_reset:
    PRINT "faults: reset via i8042 now\r\n"
    mov $0xfe, %al
    out %al, $0x64
1:  jmp 1b

    .section .rodata
key_mode:       .asciz "mode"
key_code:       .asciz "code"
name_exit:      .asciz "exit"
name_triple:    .asciz "triple"
name_flood:     .asciz "flood"
name_ports:     .asciz "ports"
name_mmio:      .asciz "mmio"
name_cli_spin:  .asciz "cli-spin"
name_panic:     .asciz "panic"
name_reset:     .asciz "reset"
    .balign 8
modes:
    .quad name_exit, mode_exit
    .quad name_triple, mode_triple
    .quad name_flood, mode_flood
    .quad name_ports, mode_ports
    .quad name_mmio, mode_mmio
    .quad name_cli_spin, mode_cli_spin
    .quad name_panic, mode_panic
    .quad name_reset, mode_reset
    .quad 0, 0
