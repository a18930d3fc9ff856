/// Routes guest port I/O to the device that owns the port, handing it the offset inside its
/// range. Registration happens at machine setup; accesses then come from the vCPU thread, which
/// the caller serializes (this type holds no lock).
public final class PortBus {
    private struct Entry {
        let range: PortRange
        let device: PortDevice
    }

    /// Sorted by base port, never overlapping, so a binary search finds the owner.
    private var entries: [Entry] = []
    private var reportedUnknownPorts = PortSet()
    private let onUnknownPort: (UInt16, _ isWrite: Bool) -> Void

    /// `onUnknownPort` hears about each port without a device once, on its first access.
    public init(onUnknownPort: @escaping (UInt16, _ isWrite: Bool) -> Void = { _, _ in }) {
        self.onUnknownPort = onUnknownPort
    }

    public func register(_ device: PortDevice, name: String, base: UInt16, count: UInt16) throws {
        let range = PortRange(name: name, base: base, count: count)
        guard count > 0 else { throw BusError.emptyRange(range) }
        guard range.last <= Int(UInt16.max) else { throw BusError.beyondPortSpace(range) }
        if let clash = entries.first(where: { $0.range.overlaps(range) }) {
            throw BusError.overlap(new: range, existing: clash.range)
        }
        let index = entries.firstIndex(where: { $0.range.base > base }) ?? entries.count
        entries.insert(Entry(range: range, device: device), at: index)
    }

    /// Every registered range, in port order (for `info` and the migration layout).
    public var devices: [PortRange] { entries.map(\.range) }

    public func read(port: UInt16, size: Int) -> UInt32 {
        guard let entry = owner(of: port) else {
            reportIfNew(port, isWrite: false)
            return allOnes(size: size)
        }
        return entry.device.read(offset: port &- entry.range.base, size: size) & allOnes(size: size)
    }

    public func write(port: UInt16, size: Int, value: UInt32) {
        guard let entry = owner(of: port) else {
            reportIfNew(port, isWrite: true)
            return
        }
        entry.device.write(offset: port &- entry.range.base, size: size, value: value & allOnes(size: size))
    }

    private func owner(of port: UInt16) -> Entry? {
        var low = 0, high = entries.count - 1
        while low <= high {
            let middle = (low + high) / 2
            let range = entries[middle].range
            if range.contains(port) { return entries[middle] }
            if port < range.base { high = middle - 1 } else { low = middle + 1 }
        }
        return nil
    }

    private func reportIfNew(_ port: UInt16, isWrite: Bool) {
        if reportedUnknownPorts.insert(port) { onUnknownPort(port, isWrite) }
    }
}
