# dirty.elf: the migration workload. Sweep s (1, 2, ...) visits every 4 KiB page in
# [base, base+size): the page's first 8 bytes must hold s-1 (0 on fresh RAM), and s is written
# there; with fill=1 the rest of the page gets fresh non-zero pseudo-random data each sweep.
# Any other value means memory was lost or corrupted (for example by a migration).
.include "macros.S"

.equ DEFAULT_BASE,      4 << 20
.equ DEFAULT_SIZE,      96 << 20
.equ DEFAULT_EVERY,     16

    .text
    .globl guest_main
guest_main:
    lea guest_name(%rip), %rax
    mov %rax, argument_owner(%rip)
    lea key_base(%rip), %rdi
    mov $DEFAULT_BASE, %esi
    call number_argument
    mov %rax, %r12                      # base
    lea key_size(%rip), %rdi
    mov $DEFAULT_SIZE, %esi
    call number_argument
    mov %rax, %r13                      # size
    lea key_every(%rip), %rdi
    mov $DEFAULT_EVERY, %esi
    call number_argument
    mov %rax, %r14                      # every
    lea key_sweeps(%rip), %rdi
    xor %esi, %esi
    call number_argument
    mov %rax, %r15                      # sweeps (0 = forever)
    lea key_fill(%rip), %rdi
    xor %esi, %esi
    call number_argument
    mov %rax, fill(%rip)
    lea key_hot(%rip), %rdi
    xor %esi, %esi
    call number_argument
    mov %rax, hot(%rip)

    lea why_fill(%rip), %rdi
    cmpq $1, fill(%rip)
    ja bad_arguments
    lea why_every(%rip), %rdi
    test %r14, %r14
    jz bad_arguments
    lea why_hot(%rip), %rdi
    mov hot(%rip), %rax
    cmp %r13, %rax
    ja bad_arguments
    test $PAGE_SIZE - 1, %eax
    jnz bad_arguments
    mov %r12, %rdi
    mov %r13, %rsi
    call check_page_range
    lea (%r12,%r13), %rbx               # end

    PRINT "dirty: base=0x"
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
    mov %r14, %rdi
    call put_dec
    PRINT "\r\n"

    mov $1, %ebp                        # sweep number
.Lsweep:
    mov %r12, %rsi                      # page
    lea -1(%rbp), %rdx                  # expected
.Lpage:
    cmp %rdx, (%rsi)
    jne mismatch
    mov %rbp, (%rsi)
    cmpq $0, fill(%rip)
    jne .Lfill
.Lfilled:
    add $PAGE_SIZE, %rsi
    cmp %rbx, %rsi
    jb .Lpage

    mov %rbp, %rax
    xor %edx, %edx
    div %r14
    test %rdx, %rdx
    jnz 1f
    call start_new_line
    PRINT "sweep "
    mov %rbp, %rdi
    call put_dec
    PRINT "\r\n"
1:  cmp %rbp, %r15
    je done
    inc %rbp
    jmp .Lsweep

# Fills bytes 8..4095 of page rsi with xorshift64 output seeded by page and sweep; a non-zero
# seed never yields zero, so every word differs from a fresh (zero) page.
.Lfill:
    mov %rsi, %rax
    mov %rbp, %rcx
    shl $40, %rcx
    xor %rcx, %rax
    movabs $0x9e3779b97f4a7c15, %rcx
    xor %rcx, %rax
    or $1, %rax
    lea 8(%rsi), %rdi
    lea PAGE_SIZE(%rsi), %r8
2:  mov %rax, %rcx
    shl $13, %rcx
    xor %rcx, %rax
    mov %rax, %rcx
    shr $7, %rcx
    xor %rcx, %rax
    mov %rax, %rcx
    shl $17, %rcx
    xor %rcx, %rax
    mov %rax, (%rdi)
    add $8, %rdi
    cmp %r8, %rdi
    jb 2b
    jmp .Lfilled

# rsi = page, rdx = expected value.
mismatch:
    mov %rsi, %rbx
    mov %rdx, %r12
    mov (%rsi), %r13
    call start_new_line
    PRINT "dirty: MISMATCH at 0x"
    mov %rbx, %rdi
    call put_hex
    PRINT ": expected 0x"
    mov %r12, %rdi
    call put_hex
    PRINT " found 0x"
    mov %r13, %rdi
    call put_hex
    PRINT "\r\n"
    mov $EXIT_MISMATCH, %edi
    call debug_exit

done:
    call start_new_line
    PRINT "dirty: done "
    mov %rbp, %rdi
    call put_dec
    PRINT " sweeps\r\n"
    # With hot=SIZE the first SIZE bytes go on being swept (and checked) forever: a guest with
    # a big cold data set and a small working set, as a busy server is.
    mov hot(%rip), %rax
    test %rax, %rax
    jz 3f
    lea (%r12,%rax), %rbx
    xor %r15d, %r15d
    PRINT "dirty: hot set 0x"
    mov hot(%rip), %rdi
    call put_hex
    PRINT "\r\n"
    inc %rbp
    jmp .Lsweep
    # Idle without touching memory or ports (hlt would need ring 0 and interrupts).
3:  pause
    jmp 3b

    .section .rodata
guest_name:     .asciz "dirty"
key_base:       .asciz "base"
key_size:       .asciz "size"
key_every:      .asciz "every"
key_sweeps:     .asciz "sweeps"
key_fill:       .asciz "fill"
key_hot:        .asciz "hot"
why_fill:       .asciz "fill must be 0 or 1"
why_every:      .asciz "every must be at least 1"
why_hot:        .asciz "hot must be whole pages, at most size"

    .data
    .balign 8
fill:   .quad 0
hot:    .quad 0
