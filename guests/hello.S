# hello.elf: prints a banner, then echoes console input (CR -> CR LF) and prints
# `tick <n>` about once a second. Polls the UART about 1000 times a second, waiting on the
# TSC in between, so an idle console costs ~1000 VM exits a second rather than ~26,000.
.include "macros.S"

    .text
    .globl guest_main
guest_main:
    PRINT "swiftkvm hello guest: "
    call ram_total
    add $((1 << 20) - 1), %rax          # round up: the map leaves out the legacy hole
    shr $20, %rax
    mov %rax, %rdi
    call put_dec
    PRINT " MiB RAM, cmdline \""
    call cmdline_string
    mov %rax, %rdi
    call serial_puts
    PRINT "\"\r\n"

    call tsc_calibrate
    mov tsc_per_ms(%rip), %r12          # poll interval
    imul $1000, %r12, %r13              # tick interval
    xor %ebx, %ebx                      # ticks printed
    RDTSC64
    mov %rax, %r14                      # next poll
    lea (%rax,%r13), %r15               # next tick

.Lwait:
    pause
    RDTSC64
    cmp %r14, %rax
    jb .Lwait
    add %r12, %r14
    cmp %r14, %rax                      # fell far behind (paused VM): do not catch up
    jb .Lpoll
    lea (%rax,%r12), %r14
.Lpoll:
    call serial_getc
    test %rax, %rax
    js .Ltick
    cmp $'\r', %eax
    jne 1f
    PRINT "\r\n"
    jmp .Lpoll                          # drain what else has arrived
1:  mov %eax, %edi
    call serial_putc
    jmp .Lpoll
.Ltick:
    RDTSC64
    cmp %r15, %rax
    jb .Lwait
    add %r13, %r15
    cmp %r15, %rax
    jb 2f
    lea (%rax,%r13), %r15
2:  inc %rbx
    call start_new_line
    PRINT "tick "
    mov %rbx, %rdi
    call put_dec
    PRINT "\r\n"
    jmp .Lwait
