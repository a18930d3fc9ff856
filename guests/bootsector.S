# A 512-byte boot sector: 16-bit real mode at 0000:7c00, DL = boot drive, no BIOS services.
# Prints to COM1 through its ports and halts.
    .code16
    .text
    .globl _start
_start:
    cli
    xor %ax, %ax
    mov %ax, %ds
    mov %ax, %ss
    mov $0x7c00, %sp
    mov %dl, %bl                        # the ports need dx
    cld

    mov $0x3f9, %dx                     # IER: no interrupts
    xor %al, %al
    out %al, %dx
    inc %dx                             # FCR: enable and clear the FIFOs
    mov $7, %al
    out %al, %dx
    inc %dx                             # LCR: 8N1
    mov $3, %al
    out %al, %dx

    mov $message, %si
    call print
    mov %bl, %al
    shr $4, %al
    call print_digit
    mov %bl, %al
    call print_digit
    mov $crlf, %si
    call print

halt:
    cli
    hlt
    jmp halt

# Prints the NUL-terminated string at si.
print:
    lodsb
    test %al, %al
    jz 1f
    call putc
    jmp print
1:  ret

# Prints the low nibble of al as a hex digit.
print_digit:
    and $15, %al
    add $'0', %al
    cmp $'9', %al
    jbe putc
    add $('a' - '9' - 1), %al
    # fall through

# Writes al, first waiting for an empty transmitter (real mode runs emulated; one check a
# byte costs little here).
putc:
    mov %al, %ah
    mov $0x3fd, %dx
1:  in %dx, %al
    test $0x20, %al
    jz 1b
    mov $0x3f8, %dx
    mov %ah, %al
    out %al, %dx
    ret

message: .asciz "swiftkvm boot sector: real mode, DL=0x"
crlf:    .asciz "\r\n"

    .org 510
    .byte 0x55, 0xaa
