/// One range a device holds on a bus, as the bus lists it and its errors name it.
public struct BusRange: Equatable, Sendable, CustomStringConvertible {
    public enum Space: String, Sendable {
        case port = "I/O port"
        case mmio = "MMIO"

        /// The last address of the space.
        var last: UInt64 { self == .port ? UInt64(UInt16.max) : UInt64.max }
        var digits: Int { self == .port ? 4 : 8 }
    }

    public var space: Space
    public var device: String
    public var base: UInt64
    public var size: UInt64

    public init(space: Space, device: String, base: UInt64, size: UInt64) {
        self.space = space; self.device = device; self.base = base; self.size = size
    }

    /// Last address inside the range; only meaningful once the bus has checked size > 0 and
    /// that the range fits its space.
    public var last: UInt64 { base &+ (size &- 1) }

    public func contains(_ address: UInt64) -> Bool { address >= base && address - base < size }

    public func overlaps(_ other: BusRange) -> Bool { base <= other.last && other.base <= last }

    public var description: String {
        "\(device) at \(hex(base, digits: space.digits))-\(hex(last, digits: space.digits))"
    }
}

func hex(_ value: UInt64, digits: Int) -> String {
    let text = String(value, radix: 16)
    return "0x" + String(repeating: "0", count: max(0, digits - text.count)) + text
}
