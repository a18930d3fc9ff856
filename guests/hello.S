# hello.elf: prints a banner, then echoes console input (CR -> CR LF) and prints
# `tick <n>` about once a second. Between those it sleeps in `hlt` (common/idle.S), woken by
# the PIT about 18 times a second and by COM1's receive interrupt, so an idle guest costs its
# host almost nothing.
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
    call idle_init
    mov tsc_per_ms(%rip), %r13
    imul $1000, %r13                    # tick interval
    xor %ebx, %ebx                      # ticks printed
    RDTSC64
    lea (%rax,%r13), %r15               # next tick

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
    jb .Lidle
    add %r13, %r15
    cmp %r15, %rax                      # fell far behind (paused VM): do not catch up
    jb 2f
    lea (%rax,%r13), %r15
2:  inc %rbx
    call start_new_line
    PRINT "tick "
    mov %rbx, %rdi
    call put_dec
    PRINT "\r\n"
.Lidle:
    # Sleeps until the timer or a received byte interrupts; a byte that came after the poll
    # above has its interrupt pending already and ends the wait at once.
    RING0_REQUEST RING0_IDLE
    jmp .Lpoll
