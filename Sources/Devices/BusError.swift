/// Why a device could not be placed on the port bus.
public enum BusError: Error, Equatable, CustomStringConvertible {
    case overlap(new: PortRange, existing: PortRange)
    case emptyRange(PortRange)
    case beyondPortSpace(PortRange)

    public var description: String {
        switch self {
        case let .overlap(new, existing):
            return "cannot register \(new): it overlaps \(existing) (choose another base port)"
        case let .emptyRange(range):
            return "cannot register \(range.name): a device needs at least one port"
        case let .beyondPortSpace(range):
            return "cannot register \(range.name): \(range.count) ports from \(hex4(Int(range.base))) run past port 0xffff"
        }
    }
}
