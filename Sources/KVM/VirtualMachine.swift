import CKVM
import Glibc

/// A KVM VM file descriptor: memory slots, the in-kernel irqchip and PIT, dirty logging,
/// interrupt lines, and VM-wide state.
public final class VirtualMachine {
    let fd: OwnedFD
    public let system: KVMSystem

    init(fd: OwnedFD, system: KVMSystem) throws {
        self.fd = fd
        self.system = system
    }

    /// KVM's private pages (its TSS takes three pages, the identity map one), just below the
    /// 4 GiB boundary, outside any RAM we map, as QEMU places them; the memory map reserves them.
    public static let tssAddress: UInt64 = 0xfffb_d000
    public static let tssSize: UInt64 = 0x3000
    public static let identityMapAddress: UInt64 = 0xfffb_c000

    /// The x86 setup every VM gets before its vCPUs exist (order matters to KVM).
    public func setUpX86Platform() throws {
        try fd.ioctl("KVM_SET_TSS_ADDR", CKVM_SET_TSS_ADDR, UInt(Self.tssAddress))
        var identityMap = Self.identityMapAddress
        try fd.ioctl("KVM_SET_IDENTITY_MAP_ADDR", CKVM_SET_IDENTITY_MAP_ADDR, &identityMap)
        try fd.ioctl("KVM_CREATE_IRQCHIP", CKVM_CREATE_IRQCHIP)
        // The speaker port 0x61 (PIT channel 2 gate and output, which Linux's PIT-based TSC
        // calibration reads) is KVM's only with SPEAKER_DUMMY; otherwise it exits to us.
        var pit = kvm_pit_config()
        pit.flags = UInt32(KVM_PIT_SPEAKER_DUMMY)
        try fd.ioctl("KVM_CREATE_PIT2", CKVM_CREATE_PIT2, &pit)
    }

    public func setMemoryRegion(_ region: GuestMemory.Region, logDirtyPages: Bool) throws {
        var r = kvm_userspace_memory_region(
            slot: region.slot,
            flags: logDirtyPages ? UInt32(KVM_MEM_LOG_DIRTY_PAGES) : 0,
            guest_phys_addr: region.guestAddress,
            memory_size: UInt64(region.size),
            userspace_addr: UInt64(UInt(bitPattern: region.host)))
        try fd.ioctl("KVM_SET_USER_MEMORY_REGION", CKVM_SET_USER_MEMORY_REGION, &r)
    }

    /// KVM_GET_DIRTY_LOG: pages written since the last call, one bit per page, into `bitmap`
    /// (which must have room for the slot's pages, rounded up to 64).
    public func fetchDirtyLog(slot: UInt32, into bitmap: inout [UInt64]) throws {
        try bitmap.withUnsafeMutableBytes { buf in
            var log = kvm_dirty_log()
            log.slot = slot
            // SAFETY: the buffer outlives the ioctl and holds one bit per page of the slot.
            log.dirty_bitmap = buf.baseAddress
            try fd.ioctl("KVM_GET_DIRTY_LOG", CKVM_GET_DIRTY_LOG, &log)
        }
    }

    /// KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2 with KVM_DIRTY_LOG_INITIALLY_SET, when this KVM offers
    /// both (Linux 5.8 on, PVM included): switching logging on then marks every page dirty
    /// without write-protecting any, and KVM_GET_DIRTY_LOG only reads the log; pages are
    /// write-protected again by `clearDirtyLog`, chunk by chunk. Returns whether it is on;
    /// off, KVM_GET_DIRTY_LOG clears and re-protects the whole slot at once, as before.
    /// Must be called while no slot logs dirty pages (the mode applies to every slot).
    public func enableManualDirtyLogProtect() -> Bool {
        let wanted = Int32(KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE) | Int32(KVM_DIRTY_LOG_INITIALLY_SET)
        let offered = (try? fd.ioctl("KVM_CHECK_EXTENSION", CKVM_CHECK_EXTENSION, UInt(KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2))) ?? 0
        guard offered & wanted == wanted else { return false }
        var cap = kvm_enable_cap()
        cap.cap = UInt32(KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2)
        cap.args.0 = UInt64(wanted)
        return (try? fd.ioctl("KVM_ENABLE_CAP", CKVM_ENABLE_CAP, &cap)) != nil
    }

    /// KVM_CLEAR_DIRTY_LOG (manual protect only): clears the log's bits for the pages set in
    /// `bitmap`, counted from `firstPage` (a multiple of 64), and write-protects those pages, so
    /// that the guest's next write to one is logged again. `pageCount` pages are covered: a
    /// multiple of 64, or up to the slot's end.
    public func clearDirtyLog(slot: UInt32, firstPage: Int, pageCount: Int, bitmap: ArraySlice<UInt64>) throws {
        precondition(firstPage % 64 == 0 && bitmap.count * 64 >= pageCount, "clearDirtyLog: a caller's bug")
        try bitmap.withUnsafeBytes { buf in
            var clear = kvm_clear_dirty_log()
            clear.slot = slot
            clear.num_pages = UInt32(pageCount)
            clear.first_page = UInt64(firstPage)
            // SAFETY: the buffer outlives the ioctl, holds one bit per page of the range, and
            // KVM only reads it (copy_from_user), so the mutable view is never written.
            clear.dirty_bitmap = UnsafeMutableRawPointer(mutating: buf.baseAddress)
            try fd.ioctl("KVM_CLEAR_DIRTY_LOG", CKVM_CLEAR_DIRTY_LOG, &clear)
        }
    }

    public func setIRQLine(_ irq: UInt32, level: Bool) throws {
        var line = kvm_irq_level()
        line.irq = irq
        line.level = level ? 1 : 0
        try fd.ioctl("KVM_IRQ_LINE", CKVM_IRQ_LINE, &line)
    }

    public func createVCPU(id: Int) throws -> VCPU {
        let raw = try fd.ioctl("KVM_CREATE_VCPU", CKVM_CREATE_VCPU, UInt(id))
        return try VCPU(fd: OwnedFD(raw), id: id, mmapSize: system.vcpuMmapSize())
    }

    // MARK: VM-wide state

    public func captureState() throws -> VMState {
        var state = VMState()
        try fd.ioctl("KVM_GET_PIT2", CKVM_GET_PIT2, &state.pit)
        state.clock = try clock()
        for chip in 0..<3 { state.irqchips.append(try irqchip(UInt32(chip))) }
        return state
    }

    /// KVM_GET_CLOCK: the guest's kvmclock now.
    public func clock() throws -> kvm_clock_data {
        var clock = kvm_clock_data()
        try fd.ioctl("KVM_GET_CLOCK", CKVM_GET_CLOCK, &clock)
        return clock
    }

    /// KVM_SET_CLOCK to a value `clock()` returned, here or on another host. Wall-clock time
    /// is carried when the reading offered it (KVM_CLOCK_REALTIME, only with KVM's master
    /// clock), so after a migration guest time accounts for the downtime.
    public func setClock(_ reading: kvm_clock_data) throws {
        var clock = kvm_clock_data()
        clock.clock = reading.clock
        clock.flags = reading.flags & UInt32(KVM_CLOCK_REALTIME)
        clock.realtime = reading.realtime
        do {
            try fd.ioctl("KVM_SET_CLOCK", CKVM_SET_CLOCK, &clock)
        } catch KVMError.ioctl(_, let err) where err == EINVAL && clock.flags != 0 {
            clock.flags = 0
            try fd.ioctl("KVM_SET_CLOCK", CKVM_SET_CLOCK, &clock)
        }
    }

    public func restore(_ state: VMState) throws {
        var pit = state.pit
        try fd.ioctl("KVM_SET_PIT2", CKVM_SET_PIT2, &pit)
        try setClock(state.clock)
        for var chip in state.irqchips {
            try fd.ioctl("KVM_SET_IRQCHIP", CKVM_SET_IRQCHIP, &chip)
        }
    }
}
