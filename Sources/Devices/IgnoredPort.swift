/// Ports guests poke for side effects only, such as 0x80 (POST codes, also used as an I/O
/// delay). Writes vanish and nothing is reported as unknown. Reads return all ones as QEMU's
/// ioport80 does; real chipsets vary (some echo the last POST code), and no guest depends on it.
public final class IgnoredPort: PortDevice {
    public static let postCodePort: UInt16 = 0x80

    public init() {}

    public func read(offset: UInt16, size: Int) -> UInt32 {
        allOnes(size: size)
    }

    public func write(offset: UInt16, size: Int, value: UInt32) {}
}
