/// Why a device could not be placed on a bus.
public enum BusError: Error, Equatable, CustomStringConvertible {
    case overlap(new: BusRange, existing: BusRange)
    case emptyRange(BusRange)
    case beyondAddressSpace(BusRange)
    /// A device that claims nothing in this space was registered on its bus.
    case noRanges(device: String, space: BusRange.Space)

    public var description: String {
        switch self {
        case let .overlap(new, existing):
            return "cannot register \(new): it overlaps \(existing) (choose another base address)"
        case let .emptyRange(range):
            return "cannot register \(range.device): a device needs at least one \(range.space == .port ? "port" : "byte") in each range"
        case let .beyondAddressSpace(range):
            let end = hex(range.space.last, digits: range.space.digits)
            return "cannot register \(range.device): \(range.size) \(range.space == .port ? "ports" : "bytes") from \(hex(range.base, digits: range.space.digits)) run past \(end)"
        case let .noRanges(device, space):
            return "cannot register \(device) on the \(space.rawValue) bus: it claims no \(space.rawValue) range"
        }
    }
}
