/// QEMU's isa-debug-exit: a guest writes V and the VMM exits with status (V << 1) | 1, so a
/// test guest can report success or failure without a shutdown path. Stateless.
public final class DebugExit: PortDevice {
    public static let defaultBase: UInt16 = 0xf4
    public static let defaultCount: UInt16 = 4

    public let name = "isa-debug-exit"
    public let portRanges: [PortRange]
    private let onExit: (Int32) -> Void

    public init(base: UInt16 = DebugExit.defaultBase, count: UInt16 = DebugExit.defaultCount,
                onExit: @escaping (Int32) -> Void) {
        portRanges = [PortRange(base: base, count: count)]
        self.onExit = onExit
    }

    /// The exit status QEMU uses for a written value (it truncates to an int the same way).
    public static func exitStatus(forWrittenValue value: UInt32) -> Int32 {
        Int32(truncatingIfNeeded: (UInt64(value) << 1) | 1)
    }

    public func portRead(offset: UInt16, size: Int) -> UInt32 {
        allOnes(size: size)
    }

    public func portWrite(offset: UInt16, size: Int, value: UInt32) {
        onExit(Self.exitStatus(forWrittenValue: value))
    }
}
