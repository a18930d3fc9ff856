/// A device on the I/O port bus. It sees only offsets from its own base (its lowest claimed
/// port) and knows nothing of KVM; the bus and the vCPU loop do the routing.
public protocol PortDevice: Device {
    var portRanges: [PortRange] { get }
    /// `size` is 1, 2 or 4; the result's bits above `size` bytes are ignored by the caller.
    func portRead(offset: UInt16, size: Int) -> UInt32
    func portWrite(offset: UInt16, size: Int, value: UInt32)
}

/// The value a read of `size` bytes returns from nothing: every data line pulled high.
@inlinable
public func allOnes(size: Int) -> UInt32 {
    switch size {
    case 1: return 0xff
    case 2: return 0xffff
    default: return 0xffff_ffff
    }
}
