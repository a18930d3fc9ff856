/// Everything needed to build a machine; the command line fills it in.
public struct MachineConfiguration: Equatable, Sendable {
    public var memorySize: UInt64
    public var boot: BootSource
    /// QEMU's `-device isa-debug-exit,iobase=...,iosize=...`.
    public var debugExit: DebugExitPorts?
    /// Waits for an incoming migration instead of loading the image (`-incoming`).
    public var incoming: Bool
    public var vcpuCount: Int

    public struct DebugExitPorts: Equatable, Sendable {
        public var base: UInt16
        public var count: UInt16
        public init(base: UInt16 = 0xf4, count: UInt16 = 4) { self.base = base; self.count = count }
    }

    public init(memorySize: UInt64, boot: BootSource, debugExit: DebugExitPorts? = nil, incoming: Bool = false, vcpuCount: Int = 1) {
        self.memorySize = memorySize; self.boot = boot; self.debugExit = debugExit
        self.incoming = incoming; self.vcpuCount = vcpuCount
    }
}
