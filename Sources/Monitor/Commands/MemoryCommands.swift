/// Handlers that read guest state: memory dumps, memory saves and the register dump.
enum MemoryCommands {
    /// Larger dumps are typos (a count meant in hex, a stray digit), not something to print.
    static let maxDumpBytes: UInt64 = 1 << 20

    static func dump(_ args: MonitorArguments, _ context: CommandContext,
                     read: MemoryDumpFormatter.Reader) throws -> String {
        let format = args.memoryFormat() ?? MemoryDumpFormat()
        if format.style == .instruction { throw MonitorError.disassemblyUnsupported }
        let bytes = UInt64(format.count) * UInt64(format.unitSize)
        if bytes > maxDumpBytes { throw MonitorError.dumpTooLarge(bytes: bytes, max: maxDumpBytes) }
        return MemoryDumpFormatter.dump(format, at: try args.integer("addr"), read: read)
    }

    static func save(_ args: MonitorArguments, read: (UInt64, Int) throws -> [UInt8]) throws {
        try GuestMemorySaver.save(address: try args.integer("addr"), size: try args.integer("size"),
                                  to: try args.string("file"), read: read)
    }

    static func registers(_ args: MonitorArguments, _ context: CommandContext) throws -> String {
        let cpus = context.backend.cpus()
        // QEMU 7.2 as Debian ships it heads every CPU's dump with a blank line and `CPU#N`.
        func dump(_ index: Int) throws -> String {
            "\nCPU#\(index)\n" + RegisterDumpFormatter.dump(try context.backend.registers(cpu: index))
        }
        if args.flag("a") {
            return try cpus.map { try dump($0.index) }.joined()
        }
        let index = args.optionalInteger("vcpu").map { Int($0) } ?? context.interpreter.currentCPU
        guard cpus.contains(where: { $0.index == index }) else { throw MonitorError.cpuNotAvailable(index) }
        return try dump(index)
    }
}
