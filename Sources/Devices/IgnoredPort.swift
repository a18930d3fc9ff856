/// Ports guests poke for side effects only, such as 0x80 (POST codes, also used as an I/O
/// delay). Writes vanish and nothing is reported as unknown. Reads return all ones as QEMU's
/// ioport80 does; real chipsets vary (some echo the last POST code), and no guest depends on it.
public final class IgnoredPort: PortDevice {
    public static let postCodePort: UInt16 = 0x80

    public let name: String
    public let portRanges: [PortRange]

    public init(name: String = "post", ranges: [PortRange] = [PortRange(base: IgnoredPort.postCodePort, count: 1)]) {
        self.name = name; self.portRanges = ranges
    }

    /// Stateless, and a destination without it behaves the same; it has never been in the
    /// layout, so streams from older builds still match.
    public var inMigrationLayout: Bool { false }

    public func portRead(offset: UInt16, size: Int) -> UInt32 {
        allOnes(size: size)
    }

    public func portWrite(offset: UInt16, size: Int, value: UInt32) {}
}
