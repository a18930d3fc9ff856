/// Non-overlapping ranges of one address space, each with a handler: the core both buses share.
/// Kept sorted by base so a lookup is a binary search.
struct RangeMap<Handler> {
    struct Entry {
        let range: BusRange
        /// The device's lowest address in this space: accesses are handed `address - deviceBase`,
        /// so a device with several ranges sees one offset space and a one-range device sees the
        /// offset inside its range.
        let deviceBase: UInt64
        let handler: Handler
    }

    let space: BusRange.Space
    private(set) var entries: [Entry] = []

    init(space: BusRange.Space) { self.space = space }

    /// Adds every range of one device, or none of them if any is refused.
    mutating func insert(device: String, ranges: [(base: UInt64, size: UInt64)], handler: Handler) throws {
        let claimed = ranges.map { BusRange(space: space, device: device, base: $0.base, size: $0.size) }
        guard let deviceBase = claimed.map(\.base).min() else { throw BusError.noRanges(device: device, space: space) }
        var accepted: [BusRange] = []
        for range in claimed {
            guard range.size > 0 else { throw BusError.emptyRange(range) }
            guard range.size - 1 <= space.last - range.base else { throw BusError.beyondAddressSpace(range) }
            if let clash = entries.map(\.range).first(where: { $0.overlaps(range) }) ?? accepted.first(where: { $0.overlaps(range) }) {
                throw BusError.overlap(new: range, existing: clash)
            }
            accepted.append(range)
        }
        for range in accepted {
            let index = entries.firstIndex(where: { $0.range.base > range.base }) ?? entries.count
            entries.insert(Entry(range: range, deviceBase: deviceBase, handler: handler), at: index)
        }
    }

    func owner(of address: UInt64) -> Entry? {
        var low = 0, high = entries.count - 1
        while low <= high {
            let middle = (low + high) / 2
            let range = entries[middle].range
            if range.contains(address) { return entries[middle] }
            if address < range.base { high = middle - 1 } else { low = middle + 1 }
        }
        return nil
    }
}
