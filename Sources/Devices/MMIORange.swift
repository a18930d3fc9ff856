/// Guest-physical addresses a device claims on the MMIO bus: `size` bytes from `base`.
public struct MMIORange: Equatable, Sendable {
    public var base: UInt64
    public var size: UInt64

    public init(base: UInt64, size: UInt64) {
        self.base = base; self.size = size
    }
}
