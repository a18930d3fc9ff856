# Questions about the PVH memory map (type 1 entries are RAM).
.include "macros.S"

    .text
    .globl ram_total, ram_contains, check_page_range

.equ MIN_RANGE_BASE,    2 << 20         # below is the guest's own image

# rax = the sum of all RAM entries' sizes.
ram_total:
    xor %eax, %eax
    call memmap_bounds
    jc 2f
1:  cmpl $E820_RAM, 16(%rsi)
    jne 3f
    add 8(%rsi), %rax
3:  add $MEMMAP_ENTRY_SIZE, %rsi
    loop 1b
2:  ret

# Carry clear if [rdi, rsi) lies within one RAM entry.
ram_contains:
    mov %rsi, %r8
    mov %rdi, %r9
    call memmap_bounds
    jc 9f
1:  cmpl $E820_RAM, 16(%rsi)
    jne 3f
    mov (%rsi), %r10
    cmp %r10, %r9
    jb 3f
    add 8(%rsi), %r10
    cmp %r10, %r8
    ja 3f
    clc
    ret
3:  add $MEMMAP_ENTRY_SIZE, %rsi
    loop 1b
9:  stc
    ret

# rsi = first memory map entry, rcx = entries; carry set if there is no map.
memmap_bounds:
    mov start_info(%rip), %rdx
    test %rdx, %rdx
    jz 1f
    cmpl $1, 4(%rdx)
    jb 1f
    mov SI_MEMMAP(%rdx), %rsi
    mov SI_MEMMAP_ENTRIES(%rdx), %ecx
    test %ecx, %ecx
    jz 1f
    clc
    ret
1:  stc
    ret

# Ends the guest as a bad argument unless [rdi, rdi+rsi) is whole pages from 2 MiB on (below is
# the guest's own image), not empty, inside one RAM entry (the workloads' base= and size=).
check_page_range:
    push %rbx
    lea why_base_low(%rip), %rbx
    cmp $MIN_RANGE_BASE, %rdi
    jb 1f
    lea why_base_align(%rip), %rbx
    test $(PAGE_SIZE - 1), %rdi
    jnz 1f
    lea why_size(%rip), %rbx
    test %rsi, %rsi
    jz 1f
    test $(PAGE_SIZE - 1), %rsi
    jnz 1f
    lea why_ram(%rip), %rbx
    add %rdi, %rsi
    jc 1f
    call ram_contains
    jc 1f
    pop %rbx
    ret
1:  mov %rbx, %rdi
    jmp bad_arguments

    .section .rodata
why_base_low:   .asciz "base must be at least 0x200000 (2 MiB)"
why_base_align: .asciz "base must be a multiple of 4 KiB"
why_size:       .asciz "size must be a non-zero multiple of 4 KiB"
why_ram:        .asciz "base+size lies outside RAM"
