# COM1 output and input, number formatting, and leaving the machine. Works in ring 0 and ring 3.
# Every port access is a VM exit, so the transmitter is checked once per 16 bytes: after LSR
# says the FIFO is empty, 16 bytes fit without asking again.
.include "macros.S"

    .text
    .globl serial_putc, serial_write, serial_puts, serial_getc, put_dec, put_hex
    .globl start_new_line, debug_exit

# Writes the byte in dil.
serial_putc:
    cmpl $0, tx_credit(%rip)
    jnz 2f
    mov $COM1_LSR, %dx
1:  in %dx, %al
    test $LSR_THR_EMPTY, %al
    jz 1b
    movl $UART_FIFO_SIZE, tx_credit(%rip)
2:  decl tx_credit(%rip)
    mov %edi, %eax
    mov $COM1, %dx
    out %al, %dx
    mov %al, last_output(%rip)
    ret

# Writes rsi bytes from rdi.
serial_write:
    push %rbx
    push %rbp
    mov %rdi, %rbx
    lea (%rdi,%rsi), %rbp
1:  cmp %rbp, %rbx
    jae 2f
    movzbl (%rbx), %edi
    call serial_putc
    inc %rbx
    jmp 1b
2:  pop %rbp
    pop %rbx
    ret

# Writes the NUL-terminated string at rdi.
serial_puts:
    push %rbx
    mov %rdi, %rbx
1:  movzbl (%rbx), %edi
    test %edi, %edi
    jz 2f
    call serial_putc
    inc %rbx
    jmp 1b
2:  pop %rbx
    ret

# Starts a new line unless the last byte written ended one.
start_new_line:
    cmpb $'\n', last_output(%rip)
    je 1f
    cmpb $0, last_output(%rip)
    je 1f
    PRINT "\r\n"
1:  ret

# rax = the next received byte, or -1 if none is waiting.
serial_getc:
    mov $COM1_LSR, %dx
    in %dx, %al
    test $LSR_DATA_READY, %al
    jz 1f
    mov $COM1, %dx
    in %dx, %al
    movzbl %al, %eax
    ret
1:  mov $-1, %rax
    ret

# Writes rdi in decimal.
put_dec:
    mov %rdi, %rax
    lea number_buffer_end(%rip), %rsi
    mov $10, %ecx
1:  xor %edx, %edx
    div %rcx
    add $'0', %dl
    dec %rsi
    mov %dl, (%rsi)
    test %rax, %rax
    jnz 1b
    jmp put_from_buffer

# Writes rdi in lower-case hexadecimal, no prefix, no leading zeros.
put_hex:
    lea number_buffer_end(%rip), %rsi
1:  mov %edi, %eax
    and $15, %eax
    lea hex_digits(%rip), %rdx
    movzbl (%rdx,%rax), %eax
    dec %rsi
    mov %al, (%rsi)
    shr $4, %rdi
    jnz 1b
put_from_buffer:
    mov %rsi, %rdi
    lea number_buffer_end(%rip), %rsi
    sub %rdi, %rsi
    jmp serial_write

# Ends the machine through the debug-exit port with value dil (status (dil<<1)|1); without that
# device the write is ignored and the guest halts forever.
debug_exit:
    mov %edi, %eax
    out %al, $DEBUG_EXIT_PORT
    RING0_REQUEST RING0_HALT_FOREVER

    .section .rodata
hex_digits: .ascii "0123456789abcdef"

    .data
tx_credit:      .long 0                 # bytes that still fit in the transmit FIFO
last_output:    .byte 0
number_buffer:  .fill 24, 1, 0
number_buffer_end:
