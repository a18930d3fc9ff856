import Machine

/// Whether a guest page holds only zero bytes (QEMU's `buffer_is_zero`). Reads 64 bytes per
/// step as eight 64-bit words and stops at the first step with a non-zero bit, so a normal
/// page usually costs one step.
@inline(__always)
func isZeroPage(_ page: UnsafeRawPointer) -> Bool {
    var offset = 0
    while offset < GuestRAMRegion.pageSize {
        // SAFETY: `page` points at a whole 4 KiB page and offset + 64 <= 4096.
        let a = page.loadUnaligned(fromByteOffset: offset, as: UInt64.self)
            | page.loadUnaligned(fromByteOffset: offset + 8, as: UInt64.self)
            | page.loadUnaligned(fromByteOffset: offset + 16, as: UInt64.self)
            | page.loadUnaligned(fromByteOffset: offset + 24, as: UInt64.self)
        let b = page.loadUnaligned(fromByteOffset: offset + 32, as: UInt64.self)
            | page.loadUnaligned(fromByteOffset: offset + 40, as: UInt64.self)
            | page.loadUnaligned(fromByteOffset: offset + 48, as: UInt64.self)
            | page.loadUnaligned(fromByteOffset: offset + 56, as: UInt64.self)
        if a | b != 0 { return false }
        offset += 64
    }
    return true
}
