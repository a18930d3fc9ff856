/// A device on the MMIO bus. It sees only offsets from its own base (its lowest claimed
/// address) and knows nothing of KVM.
public protocol MMIODevice: Device {
    var mmioRanges: [MMIORange] { get }
    /// `size` is 1 to 8 bytes; the result's bits above `size` bytes are ignored by the caller.
    func mmioRead(offset: UInt64, size: Int) -> UInt64
    func mmioWrite(offset: UInt64, size: Int, value: UInt64)
}

/// The value an MMIO read of `size` bytes returns from nothing: every data line pulled high.
@inlinable
public func allOnes64(size: Int) -> UInt64 {
    size >= 8 ? UInt64.max : (UInt64(1) << (UInt64(max(0, size)) * 8)) - 1
}
