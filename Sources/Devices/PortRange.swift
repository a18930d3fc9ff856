/// Ports a device claims on the port bus: `count` ports from `base`.
public struct PortRange: Equatable, Sendable {
    public var base: UInt16
    public var count: UInt16

    public init(base: UInt16, count: UInt16) {
        self.base = base; self.count = count
    }
}
