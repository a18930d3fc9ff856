import CKVM

/// VM-wide KVM state: the PIT, the clock, and the three irqchips (PIC master, PIC slave, IOAPIC).
public struct VMState {
    public var pit = kvm_pit_state2()
    public var clock = kvm_clock_data()
    public var irqchips: [kvm_irqchip] = []

    public init() {}

    enum Field: UInt32 { case pit = 1, clock, irqchip }

    public func encodedFields() -> [(tag: UInt32, bytes: [UInt8])] {
        [(Field.pit.rawValue, PlainData.bytes(of: pit)), (Field.clock.rawValue, PlainData.bytes(of: clock))]
            + irqchips.map { (Field.irqchip.rawValue, PlainData.bytes(of: $0)) }
    }

    /// Each of the PIT and the clock exactly once, and the three irqchips once each: KVM would
    /// take a duplicate as the last word and leave a missing one as it was at boot.
    public init(fields: [(tag: UInt32, bytes: [UInt8])]) throws {
        var seenPIT = false, seenClock = false
        var chipIDs = Set<UInt32>()
        for (tag, bytes) in fields {
            switch Field(rawValue: tag) {
            case .pit:
                guard !seenPIT else { throw StateFieldError.badValue(field: "PIT", detail: "appears twice") }
                seenPIT = true
                pit = try StateFieldError.check(PlainData.value(kvm_pit_state2.self, from: bytes, zero: kvm_pit_state2()), "PIT", bytes.count, MemoryLayout<kvm_pit_state2>.size)
            case .clock:
                guard !seenClock else { throw StateFieldError.badValue(field: "clock", detail: "appears twice") }
                seenClock = true
                clock = try StateFieldError.check(PlainData.value(kvm_clock_data.self, from: bytes, zero: kvm_clock_data()), "clock", bytes.count, MemoryLayout<kvm_clock_data>.size)
            case .irqchip:
                let chip = try StateFieldError.check(PlainData.value(kvm_irqchip.self, from: bytes, zero: kvm_irqchip()), "irqchip", bytes.count, MemoryLayout<kvm_irqchip>.size)
                guard chip.chip_id < 3 else { throw StateFieldError.badValue(field: "irqchip", detail: "chip id \(chip.chip_id)") }
                guard chipIDs.insert(chip.chip_id).inserted else {
                    throw StateFieldError.badValue(field: "irqchip", detail: "chip id \(chip.chip_id) appears twice")
                }
                irqchips.append(chip)
            case nil:
                throw StateFieldError.unknownField(tag)
            }
        }
        guard seenPIT else { throw StateFieldError.missing("PIT") }
        guard seenClock else { throw StateFieldError.missing("clock") }
        guard irqchips.count == 3 else { throw StateFieldError.missing("irqchip (have \(irqchips.count) of 3)") }
    }
}

/// Why a saved KVM state could not be decoded.
public enum StateFieldError: Error, CustomStringConvertible, Equatable {
    case wrongSize(field: String, got: Int, expected: Int)
    case unknownField(UInt32)
    case missing(String)
    case badValue(field: String, detail: String)

    public var description: String {
        switch self {
        case .wrongSize(let f, let got, let expected): return "\(f) state is \(got) bytes, expected \(expected)"
        case .unknownField(let tag): return "unknown state field \(tag)"
        case .missing(let f): return "state lacks \(f)"
        case .badValue(let f, let d): return "bad \(f) state: \(d)"
        }
    }

    static func check<T>(_ value: T?, _ field: String, _ got: Int, _ expected: Int) throws -> T {
        guard let value else { throw StateFieldError.wrongSize(field: field, got: got, expected: expected) }
        return value
    }
}
