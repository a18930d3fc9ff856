# Interrupts that wake an idle guest: the PICs, PIT channel 0 ticking about 18 times a second
# and COM1's receive interrupt. With them a guest can wait in ring 0 with `hlt`
# (RING0_REQUEST RING0_IDLE) instead of spinning on the TSC: its vCPU then sleeps in the host.
# Ring 3 runs with interrupts off, so they are taken only while idle.
.include "macros.S"

.equ PIT_CH0,           0x40
.equ PIT_COMMAND,       0x43
.equ PIT_CH0_MODE2,     0x34            # channel 0, low then high byte, rate generator, binary
.equ COM1_IER,          0x3f9
.equ COM1_MCR,          0x3fc
.equ IER_RECEIVE,       0x01
.equ MCR_OUT2,          0x08            # gates the UART's interrupt to the PIC on PCs
.equ PIC_ICW1,          0x11            # edge triggered, cascade, ICW4 follows
.equ PIC_ICW4_8086,     0x01
.equ PIC1_MASK,         0xee            # only IRQ 0 (PIT) and IRQ 4 (COM1)
.equ PIC2_MASK,         0xff

    .text
    .globl idle_init

idle_init:
    mov $PIC_ICW1, %al
    out %al, $PIC1_COMMAND
    out %al, $PIC2_COMMAND
    mov $IRQ_VECTOR_BASE, %al
    out %al, $PIC1_DATA
    mov $(IRQ_VECTOR_BASE + 8), %al
    out %al, $PIC2_DATA
    mov $4, %al                         # the slave is on IRQ 2
    out %al, $PIC1_DATA
    mov $2, %al
    out %al, $PIC2_DATA
    mov $PIC_ICW4_8086, %al
    out %al, $PIC1_DATA
    out %al, $PIC2_DATA
    mov $PIC1_MASK, %al
    out %al, $PIC1_DATA
    mov $PIC2_MASK, %al
    out %al, $PIC2_DATA

    mov $PIT_CH0_MODE2, %al
    out %al, $PIT_COMMAND
    xor %eax, %eax                      # divisor 65536: 1193182 / 65536 = 18.2 Hz
    out %al, $PIT_CH0
    out %al, $PIT_CH0

    mov $COM1_MCR, %dx
    mov $MCR_OUT2, %al
    out %al, %dx
    mov $COM1_IER, %dx
    mov $IER_RECEIVE, %al
    out %al, %dx
    ret
