/// Routes guest port I/O to the device that owns the port, handing it the offset from its base.
/// Registration happens at machine setup; accesses then come from the vCPU thread, which the
/// caller serializes (this type holds no lock).
public final class PortBus {
    private var map = RangeMap<PortDevice>(space: .port)
    private var reportedUnknownPorts = PortSet()
    private let onUnknownPort: (UInt16, _ isWrite: Bool) -> Void

    /// `onUnknownPort` hears about each port without a device once, on its first access.
    public init(onUnknownPort: @escaping (UInt16, _ isWrite: Bool) -> Void = { _, _ in }) {
        self.onUnknownPort = onUnknownPort
    }

    /// Places every port range the device claims, or none if one is refused.
    public func register(_ device: PortDevice) throws {
        try map.insert(device: device.name, ranges: device.portRanges.map { (UInt64($0.base), UInt64($0.count)) }, handler: device)
    }

    /// Every registered range, in port order.
    public var ranges: [BusRange] { map.entries.map(\.range) }

    public func read(port: UInt16, size: Int) -> UInt32 {
        guard let entry = map.owner(of: UInt64(port)) else {
            reportIfNew(port, isWrite: false)
            return allOnes(size: size)
        }
        return entry.handler.portRead(offset: UInt16(UInt64(port) - entry.deviceBase), size: size) & allOnes(size: size)
    }

    public func write(port: UInt16, size: Int, value: UInt32) {
        guard let entry = map.owner(of: UInt64(port)) else {
            reportIfNew(port, isWrite: true)
            return
        }
        entry.handler.portWrite(offset: UInt16(UInt64(port) - entry.deviceBase), size: size, value: value & allOnes(size: size))
    }

    private func reportIfNew(_ port: UInt16, isWrite: Bool) {
        if reportedUnknownPorts.insert(port) { onUnknownPort(port, isWrite) }
    }
}
