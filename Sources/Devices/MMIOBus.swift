/// Routes guest MMIO exits to the device that owns the address, handing it the offset from its
/// base, as Firecracker's `vstate/bus.rs` does. Addresses nobody claims read as all ones and are
/// reported once per 4 KiB page, for the first `reportLimit` pages only: a guest that sweeps
/// unmapped memory must not flood the log. Not thread-safe: the caller serializes accesses.
public final class MMIOBus {
    public static let reportLimit = 16

    private var map = RangeMap<MMIODevice>(space: .mmio)
    private var reportedPages = Set<UInt64>()
    private let onUnknownAddress: (UInt64, _ isWrite: Bool) -> Void

    public init(onUnknownAddress: @escaping (UInt64, _ isWrite: Bool) -> Void = { _, _ in }) {
        self.onUnknownAddress = onUnknownAddress
    }

    /// Places every MMIO range the device claims, or none if one is refused.
    public func register(_ device: MMIODevice) throws {
        try map.insert(device: device.name, ranges: device.mmioRanges.map { ($0.base, $0.size) }, handler: device)
    }

    /// Every registered range, in address order.
    public var ranges: [BusRange] { map.entries.map(\.range) }

    /// `size` is 1 to 8 bytes.
    public func read(address: UInt64, size: Int) -> UInt64 {
        guard let entry = map.owner(of: address) else {
            reportIfNew(address, isWrite: false)
            return allOnes64(size: size)
        }
        return entry.handler.mmioRead(offset: address - entry.deviceBase, size: size) & allOnes64(size: size)
    }

    public func write(address: UInt64, size: Int, value: UInt64) {
        guard let entry = map.owner(of: address) else {
            reportIfNew(address, isWrite: true)
            return
        }
        entry.handler.mmioWrite(offset: address - entry.deviceBase, size: size, value: value & allOnes64(size: size))
    }

    private func reportIfNew(_ address: UInt64, isWrite: Bool) {
        guard reportedPages.count < Self.reportLimit, reportedPages.insert(address >> 12).inserted else { return }
        onUnknownAddress(address, isWrite)
    }
}
