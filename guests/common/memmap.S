# Questions about the PVH memory map (type 1 entries are RAM).
.include "macros.S"

    .text
    .globl ram_total, ram_contains

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
