/// A named range of I/O ports held by one device.
public struct PortRange: Equatable, Sendable, CustomStringConvertible {
    public var name: String
    public var base: UInt16
    public var count: UInt16

    public init(name: String, base: UInt16, count: UInt16) {
        self.name = name; self.base = base; self.count = count
    }

    /// Last port inside the range, computed wide so a range ending at 0xffff does not overflow.
    public var last: Int { Int(base) + Int(count) - 1 }

    public func contains(_ port: UInt16) -> Bool { Int(port) >= Int(base) && Int(port) <= last }

    public func overlaps(_ other: PortRange) -> Bool { Int(base) <= other.last && Int(other.base) <= last }

    public var description: String {
        "\(name) at " + hex4(Int(base)) + "-" + hex4(last)
    }
}

func hex4(_ value: Int) -> String {
    let digits = String(value, radix: 16)
    return "0x" + String(repeating: "0", count: max(0, 4 - digits.count)) + digits
}
