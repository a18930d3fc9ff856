/// The fixed-hardware ACPI power management registers a PC FADT points at: PM1a event block
/// (status, enable) and PM1a control block, six ports from `base`. The power button is the
/// fixed-feature one: the host presses it (`system_powerdown`) and the SCI tells the guest.
/// Writing SLP_TYP = S5 with SLP_EN is the guest's poweroff. ACPI mode is always on: there is
/// no SMI command port, and SCI_EN reads as set.
public final class ACPIPM: PortDevice, StatefulDevice {
    public let name = "acpi-pm"
    public let portRanges = [PortRange(base: ACPIPM.base, count: ACPIPM.portCount)]
    /// ICH9's PM base, where QEMU's q35 machine puts it.
    public static let base: UInt16 = 0x600
    public static let portCount: UInt16 = 6
    public static let eventBlockLength: UInt8 = 4
    public static let controlBlockLength: UInt8 = 2
    public static var controlBlockAddress: UInt16 { base + UInt16(eventBlockLength) }
    /// The SCI, as the FADT and the MADT's interrupt source override declare it.
    public static let sciIRQ: UInt32 = 9
    /// The SLP_TYP value the DSDT's \_S5 package gives for soft-off.
    public static let sleepTypeS5: UInt16 = 5

    static let statusOffset: UInt16 = 0
    static let enableOffset: UInt16 = 2
    static let controlOffset: UInt16 = 4

    /// PM1 status/enable: the power button (bit 8); status bits are cleared by writing 1.
    public static let powerButton: UInt16 = 1 << 8
    /// PM1 status: set on wake; no enable bit.
    static let wakeStatus: UInt16 = 1 << 15
    /// Status bits with an enable bit: timer, global lock, power button, sleep button, RTC.
    static let enableBits: UInt16 = 1 << 0 | 1 << 5 | 1 << 8 | 1 << 9 | 1 << 10
    /// PM1 control: SCI_EN (bit 0), SLP_TYP (bits 10-12), SLP_EN (bit 13, write-only).
    public static let sciEnable: UInt16 = 1 << 0
    static let sleepTypeShift: UInt16 = 10
    static let sleepTypeMask: UInt16 = 0x7 << 10
    public static let sleepEnable: UInt16 = 1 << 13

    public private(set) var state: ACPIPMState
    private let onSCI: (Bool) -> Void
    private let onSleep: (UInt16) -> Void
    private var sciLevel = false

    /// - Parameters:
    ///   - onSCI: the SCI line's level (asserted while an enabled status bit is set).
    ///   - onSleep: the guest entered sleep state SLP_TYP (sleepTypeS5: power off).
    public init(state: ACPIPMState = ACPIPMState(), onSCI: @escaping (Bool) -> Void, onSleep: @escaping (UInt16) -> Void) {
        self.state = state
        self.onSCI = onSCI
        self.onSleep = onSleep
    }

    public func restore(_ state: ACPIPMState) {
        self.state = state
        updateSCI()
    }

    /// The host's power button (QEMU's system_powerdown).
    public func pressPowerButton() {
        state.status |= Self.powerButton
        updateSCI()
    }

    public func portRead(offset: UInt16, size: Int) -> UInt32 {
        var value: UInt32 = 0
        for i in 0..<size {
            value |= UInt32(readByte(offset + UInt16(i))) << (8 * i)
        }
        return value
    }

    public func portWrite(offset: UInt16, size: Int, value: UInt32) {
        var sleepRequested = false
        for i in 0..<size {
            let at = offset + UInt16(i)
            let byte = UInt16(truncatingIfNeeded: value >> (8 * i))
            guard at < Self.portCount else { break }
            let shift = (at & 1) * 8
            switch at & ~1 {
            case Self.statusOffset:
                state.status &= ~(byte << shift)
            case Self.enableOffset:
                state.enable = state.enable & ~(0xff << shift) | (byte << shift) & Self.enableBits
            default:
                let written = state.control & ~(0xff << shift) | (byte << shift)
                if written & Self.sleepEnable != 0 { sleepRequested = true }
                state.control = written & ~Self.sleepEnable | Self.sciEnable
            }
        }
        updateSCI()
        if sleepRequested { onSleep((state.control & Self.sleepTypeMask) >> Self.sleepTypeShift) }
    }

    private func readByte(_ at: UInt16) -> UInt8 {
        let register: UInt16
        switch at & ~1 {
        case Self.statusOffset: register = state.status
        case Self.enableOffset: register = state.enable
        case Self.controlOffset: register = state.control
        default: return 0xff
        }
        return UInt8(truncatingIfNeeded: register >> ((at & 1) * 8))
    }

    private func updateSCI() {
        let level = state.status & state.enable & Self.enableBits != 0
        guard level != sciLevel else { return }
        sciLevel = level
        onSCI(level)
    }
}
