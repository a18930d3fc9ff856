# The -append command line: whitespace-separated key=value tokens.
.include "macros.S"

    .text
    .globl cmdline_string, cmdline_find, parse_number, number_argument, bad_arguments
    .globl argument_owner

# rax = the command line (an empty string if there is none).
cmdline_string:
    mov start_info(%rip), %rax
    test %rax, %rax
    jz 1f
    mov SI_CMDLINE(%rax), %rax
    test %rax, %rax
    jz 1f
    ret
1:  lea empty_string(%rip), %rax
    ret

# Finds the value of key rdi (NUL-terminated, without '='): rax = value, rdx = its length.
# Carry set if the key is absent. A later occurrence wins, as in most command lines.
cmdline_find:
    push %rbx
    push %r12
    push %r13
    mov %rdi, %r12
    call cmdline_string
    mov %rax, %rbx                      # scan position
    xor %r13, %r13                      # value found so far (0 = none)
.Lnext_token:
    movzbl (%rbx), %eax
    test %eax, %eax
    jz .Lscan_done
    cmp $' ', %eax
    jbe .Lskip_blank                    # space, tab, newline
    # At a token: compare it with "key=".
    mov %rbx, %rsi
    mov %r12, %rdi
1:  movzbl (%rdi), %eax
    test %eax, %eax
    jz 2f
    cmp (%rsi), %al
    jne .Lskip_token
    inc %rdi
    inc %rsi
    jmp 1b
2:  cmpb $'=', (%rsi)
    jne .Lskip_token
    inc %rsi
    mov %rsi, %r13
    mov %rsi, %rbx
.Lskip_token:
    movzbl (%rbx), %eax
    cmp $' ', %eax
    jbe .Lnext_token
    inc %rbx
    jmp .Lskip_token
.Lskip_blank:
    inc %rbx
    jmp .Lnext_token
.Lscan_done:
    test %r13, %r13
    jz .Lnot_found
    mov %r13, %rax
    xor %edx, %edx
3:  movzbl (%rax,%rdx), %ecx
    cmp $' ', %ecx
    jbe 4f
    inc %rdx
    jmp 3b
4:  clc
    jmp 5f
.Lnot_found:
    stc
5:  pop %r13
    pop %r12
    pop %rbx
    ret

# Parses rsi bytes at rdi as a number: decimal or 0x-hex, with an optional K, M or G suffix
# (binary units). rax = value; carry set if malformed or if it overflows 64 bits.
parse_number:
    xor %eax, %eax
    test %rsi, %rsi
    jz .Lbad
    lea (%rdi,%rsi), %r8                # end
    mov $10, %r9d                       # base
    cmp $2, %rsi
    jb 1f
    cmpb $'0', (%rdi)
    jne 1f
    movzbl 1(%rdi), %ecx
    or $0x20, %ecx
    cmp $'x', %ecx
    jne 1f
    mov $16, %r9d
    add $2, %rdi
1:  mov %rdi, %r10                      # first digit
.Ldigit:
    cmp %r8, %rdi
    jae .Lend_digits
    movzbl (%rdi), %ecx
    sub $'0', %ecx
    cmp $9, %ecx
    jbe 2f
    movzbl (%rdi), %ecx
    or $0x20, %ecx
    sub $'a', %ecx
    cmp $5, %ecx
    ja .Lend_digits
    add $10, %ecx
2:  cmp %r9d, %ecx
    jae .Lend_digits
    mul %r9                             # rdx:rax = rax * base
    jc .Lbad
    add %rcx, %rax
    jc .Lbad
    inc %rdi
    jmp .Ldigit
.Lend_digits:
    cmp %r10, %rdi
    je .Lbad                            # no digits
    cmp %r8, %rdi
    je .Lgood
    lea 1(%rdi), %rcx
    cmp %r8, %rcx
    jne .Lbad                           # more than one character after the digits
    movzbl (%rdi), %ecx
    or $0x20, %ecx
    mov $10, %edx
    cmp $'k', %ecx
    je 3f
    mov $20, %edx
    cmp $'m', %ecx
    je 3f
    mov $30, %edx
    cmp $'g', %ecx
    jne .Lbad
3:  mov %edx, %ecx
    mov %rax, %rdx
    shl %cl, %rax
    mov %rax, %r11
    shr %cl, %r11
    cmp %rdx, %r11
    jne .Lbad                           # bits shifted out
.Lgood:
    clc
    ret
.Lbad:
    stc
    ret

# rax = the number given for key rdi, or rsi if the key is absent. A malformed number is a bad
# argument.
number_argument:
    push %rbx
    push %rbp
    mov %rdi, %rbx
    mov %rsi, %rbp
    call cmdline_find
    jc 1f
    mov %rax, %rdi
    mov %rdx, %rsi
    call parse_number
    jc 2f
    pop %rbp
    pop %rbx
    ret
1:  mov %rbp, %rax
    pop %rbp
    pop %rbx
    ret
2:  call start_new_line
    mov argument_owner(%rip), %rdi
    call serial_puts
    PRINT ": bad arguments: "
    mov %rbx, %rdi
    call serial_puts
    PRINT " is not a number\r\n"
    mov $EXIT_BAD_ARGS, %edi
    call debug_exit

# Prints "<argument_owner>: bad arguments: <rdi>" and ends the guest with EXIT_BAD_ARGS.
bad_arguments:
    mov %rdi, %rbx
    call start_new_line
    mov argument_owner(%rip), %rdi
    call serial_puts
    PRINT ": bad arguments: "
    mov %rbx, %rdi
    call serial_puts
    PRINT "\r\n"
    mov $EXIT_BAD_ARGS, %edi
    call debug_exit

    .section .rodata
empty_string: .byte 0
default_owner: .asciz "guest"

    .data
    .balign 8
argument_owner: .quad default_owner     # the guest's name in argument errors; guests set it
