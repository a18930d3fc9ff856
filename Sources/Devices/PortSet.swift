/// One bit for each of the 65536 I/O ports: 8 KiB, whatever the guest does.
struct PortSet {
    private var words = [UInt64](repeating: 0, count: 65536 / 64)

    /// Adds `port`; returns true if it was not there before.
    mutating func insert(_ port: UInt16) -> Bool {
        let word = Int(port >> 6)
        let bit = UInt64(1) << UInt64(port & 63)
        guard words[word] & bit == 0 else { return false }
        words[word] |= bit
        return true
    }

    func contains(_ port: UInt16) -> Bool {
        words[Int(port >> 6)] & (UInt64(1) << UInt64(port & 63)) != 0
    }
}
