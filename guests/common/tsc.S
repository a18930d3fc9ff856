# Calibrates the time stamp counter against PIT channel 2 (its gate is port 0x61 bit 0 and it
# raises no interrupt), so guests can wait with rdtsc instead of polling ports.
.include "macros.S"

.equ PIT_HZ,            1193182
.equ PIT_CH2,           0x42
.equ PIT_COMMAND,       0x43
.equ PIT_CH2_MODE0,     0xb0            # channel 2, low then high byte, mode 0, binary
.equ PIT_CH2_LATCH,     0x80
.equ SPEAKER_PORT,      0x61
.equ CALIBRATION_TICKS, 11932           # 10 ms
.equ MAX_READS,         2000            # give up if the PIT does not count
.equ FALLBACK_TSC_PER_MS, 2000000       # 2 GHz

    .text
    .globl tsc_calibrate, tsc_per_ms

# Sets tsc_per_ms; takes about 10 ms.
tsc_calibrate:
    push %rbx
    push %r12
    push %r13
    push %r14
    in $SPEAKER_PORT, %al
    and $0xfc, %al                      # speaker data off
    or $1, %al                          # gate on
    out %al, $SPEAKER_PORT
    mov $PIT_CH2_MODE0, %al
    out %al, $PIT_COMMAND
    mov $0xff, %al
    out %al, $PIT_CH2
    out %al, $PIT_CH2
    call pit_count
    mov %eax, %ebx                      # previous count
    RDTSC64
    mov %rax, %r12                      # start time
    xor %r13d, %r13d                    # elapsed PIT ticks
    mov $MAX_READS, %r14d
1:  call pit_count
    mov %ebx, %ecx
    sub %eax, %ecx                      # counts down; wraps at 16 bits
    and $0xffff, %ecx
    add %rcx, %r13
    mov %eax, %ebx
    cmp $CALIBRATION_TICKS, %r13
    jae 2f
    dec %r14d
    jnz 1b
    movq $FALLBACK_TSC_PER_MS, tsc_per_ms(%rip)
    jmp 3f
2:  RDTSC64
    sub %r12, %rax
    mov $PIT_HZ, %ecx
    mul %rcx
    imul $1000, %r13, %rcx
    div %rcx
    test %rax, %rax
    jnz 4f
    inc %rax
4:  mov %rax, tsc_per_ms(%rip)
3:  pop %r14
    pop %r13
    pop %r12
    pop %rbx
    ret

# eax = channel 2's current count.
pit_count:
    mov $PIT_CH2_LATCH, %al
    out %al, $PIT_COMMAND
    in $PIT_CH2, %al
    mov %al, %cl
    in $PIT_CH2, %al
    movzbl %al, %eax
    shl $8, %eax
    mov %cl, %al
    ret

    .data
    .balign 8
tsc_per_ms: .quad FALLBACK_TSC_PER_MS
