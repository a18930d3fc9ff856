/// Everything needed to build a machine; the command line fills it in.
public struct MachineConfiguration: Equatable, Sendable {
    public var memorySize: UInt64
    public var boot: BootSource
    /// QEMU's `-device isa-debug-exit,iobase=...,iosize=...`.
    public var debugExit: DebugExitPorts?
    /// Waits for an incoming migration instead of loading the image (`-incoming`).
    public var incoming: Bool
    /// `-smp`: vCPU 0 boots, the others wait for the guest's start-up IPIs.
    public var vcpuCount: Int
    /// `-object memory-backend-memfd` with `-machine memory-backend=`: guest RAM in a memfd,
    /// shared, so a same-host migration can hand it over (x-ignore-shared).
    public var memfdRAM = false
    /// `-mem-prealloc`: commit all guest RAM before the guest runs (a mapped-ram restore reads
    /// the whole snapshot into memory instead of mapping it).
    public var preallocateRAM = false
    /// The most vCPUs a configuration may ask for (x86 KVM's own ceiling, KVM_MAX_VCPUS); the
    /// host may allow fewer (KVM_CAP_MAX_VCPUS), which the machine checks.
    public static let maxVCPUCount = 1024

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
