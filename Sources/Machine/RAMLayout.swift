/// Where guest RAM goes in the guest-physical address space. RAM above 3 GiB moves past the
/// 4 GiB boundary, leaving the hole where x86 puts the IOAPIC, LAPIC and KVM's TSS pages.
public enum RAMLayout {
    public static let lowRAMLimit: UInt64 = 3 << 30
    public static let highRAMStart: UInt64 = 4 << 30

    public static func ranges(forSize size: UInt64) -> [MachineLayout.RAMRange] {
        if size <= lowRAMLimit { return [.init(guestAddress: 0, size: size)] }
        return [.init(guestAddress: 0, size: lowRAMLimit),
                .init(guestAddress: highRAMStart, size: size - lowRAMLimit)]
    }
}
