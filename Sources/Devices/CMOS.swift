/// The MC146818 RTC and CMOS RAM at ports 0x70 (index, bit 7 masks NMI) and 0x71 (data).
/// Time registers come from an injected clock; guest writes to them are kept in RAM but reads
/// always show the clock, since the guest's time follows the host's.
public final class CMOS: PortDevice, StatefulDevice {
    public static let base: UInt16 = 0x70
    public static let portCount: UInt16 = 2
    public let name = "cmos"
    public let portRanges = [PortRange(base: CMOS.base, count: CMOS.portCount)]

    static let seconds: UInt8 = 0x00
    static let minutes: UInt8 = 0x02
    static let hours: UInt8 = 0x04
    static let weekday: UInt8 = 0x06
    static let dayOfMonth: UInt8 = 0x07
    static let month: UInt8 = 0x08
    static let year: UInt8 = 0x09
    static let statusA: UInt8 = 0x0a
    static let statusB: UInt8 = 0x0b
    static let statusC: UInt8 = 0x0c
    static let statusD: UInt8 = 0x0d
    public static let century: UInt8 = 0x32

    static let statusAUpdateInProgress: UInt8 = 0x80
    static let statusB24Hour: UInt8 = 0x02
    static let statusBBinary: UInt8 = 0x04        // DM: binary instead of BCD
    static let statusDValidRAM: UInt8 = 0x80
    static let hourPM: UInt8 = 0x80               // in 12-hour mode

    public private(set) var state: CMOSState
    private let clock: () -> RTCDateTime

    public init(state: CMOSState = CMOSState(), clock: @escaping () -> RTCDateTime = RTCDateTime.hostNow) {
        self.state = state
        self.clock = clock
    }

    public func restore(_ state: CMOSState) {
        self.state = state
    }

    /// Lets the machine fill in firmware fields (memory size and the like) before boot.
    public func setRAM(_ value: UInt8, at index: UInt8) {
        state.ram[Int(index & 0x7f)] = value
    }

    public func ram(at index: UInt8) -> UInt8 {
        state.ram[Int(index & 0x7f)]
    }

    public func portRead(offset: UInt16, size: Int) -> UInt32 {
        // The index port is write-only on real chips; QEMU reads it as 0xff.
        guard offset == 1 else { return allOnes(size: size) }
        return UInt32(readSelected())
    }

    public func portWrite(offset: UInt16, size: Int, value: UInt32) {
        let byte = UInt8(truncatingIfNeeded: value)
        if offset == 0 {
            state.index = byte & 0x7f
            state.nmiMasked = byte & 0x80 != 0
        } else if offset == 1 {
            writeSelected(byte)
        }
    }

    private func readSelected() -> UInt8 {
        let index = state.index
        switch index {
        case Self.seconds, Self.minutes, Self.hours, Self.weekday, Self.dayOfMonth, Self.month, Self.year, Self.century:
            return timeRegister(index, clock())
        case Self.statusA:
            // No update cycle is ever in progress: the time is read whole from the host.
            return state.ram[Int(index)] & ~Self.statusAUpdateInProgress
        case Self.statusC:
            // Interrupt flags clear on read; no RTC interrupts are raised, so they stay 0.
            let flags = state.ram[Int(index)]
            state.ram[Int(index)] = 0
            return flags
        case Self.statusD:
            return Self.statusDValidRAM
        default:
            return state.ram[Int(index)]
        }
    }

    private func writeSelected(_ value: UInt8) {
        switch state.index {
        case Self.statusA:
            state.ram[Int(Self.statusA)] = value & ~Self.statusAUpdateInProgress
        case Self.statusC, Self.statusD:
            break  // read-only
        default:
            state.ram[Int(state.index)] = value
        }
    }

    private var isBinary: Bool { state.ram[Int(Self.statusB)] & Self.statusBBinary != 0 }
    private var is24Hour: Bool { state.ram[Int(Self.statusB)] & Self.statusB24Hour != 0 }

    private func timeRegister(_ index: UInt8, _ now: RTCDateTime) -> UInt8 {
        switch index {
        case Self.seconds: return encode(now.second)
        case Self.minutes: return encode(now.minute)
        case Self.hours: return encodeHour(now.hour)
        case Self.weekday: return encode(now.weekday)
        case Self.dayOfMonth: return encode(now.day)
        case Self.month: return encode(now.month)
        case Self.year: return encode(now.year % 100)
        default: return encode(now.year / 100 % 100)
        }
    }

    private func encodeHour(_ hour: Int) -> UInt8 {
        guard !is24Hour else { return encode(hour) }
        let twelveHour = hour % 12 == 0 ? 12 : hour % 12
        return encode(twelveHour) | (hour >= 12 ? Self.hourPM : 0)
    }

    /// BCD unless the guest chose binary mode; values are always 0...99 here.
    private func encode(_ value: Int) -> UInt8 {
        let clamped = UInt8(clamping: max(0, min(99, value)))
        return isBinary ? clamped : (clamped / 10) << 4 | clamped % 10
    }
}
