/// The monitor's own command table: VM control, help and memory inspection. Help texts follow
/// QEMU's hmp-commands.hx where the command exists there.
enum BuiltinCommands {
    static let all: [MonitorCommand] = [
        MonitorCommand(name: "help", aliases: ["?"],
                       arguments: [ArgumentSpec("cmd", .string, optional: true),
                                   ArgumentSpec("subcommand", .string, optional: true)],
                       params: "[cmd]", help: "show the help") { args, context in
            let topic = [args.optionalString("cmd"), args.optionalString("subcommand")].compactMap { $0 }
            return try context.interpreter.helpText(topic: topic)
        },
        MonitorCommand(name: "info", arguments: [ArgumentSpec("subcommand", .string, optional: true)],
                       params: "[subcommand]", help: "show various information about the system state") { _, context in
            context.interpreter.infoHelpText()
        },
        MonitorCommand(name: "quit", aliases: ["q"], help: "quit the emulator") { _, context in
            context.backend.requestQuit()
            context.quitRequested = true
            return ""
        },
        MonitorCommand(name: "stop", aliases: ["s"], help: "stop emulation") { _, context in
            try context.backend.stop()
            return ""
        },
        MonitorCommand(name: "cont", aliases: ["c"], arguments: [.flag("f")],
                       help: "resume emulation (-f: also after a completed outgoing migration)") { args, context in
            try context.backend.cont(force: args.flag("f"))
            return ""
        },
        MonitorCommand(name: "system_reset", help: "reset the system") { _, context in
            try context.backend.systemReset()
            return ""
        },
        MonitorCommand(name: "system_powerdown", help: "send system power down event") { _, context in
            try context.backend.systemPowerdown()
            return ""
        },
        MonitorCommand(name: "cpu", arguments: [ArgumentSpec("index", .integer(max: UInt64(Int32.max)))],
                       help: "set the default CPU") { args, context in
            let index = Int(try args.integer("index"))
            let count = context.backend.cpus().count
            guard index < count else { throw MonitorError.invalidCPUIndex(available: count) }
            context.interpreter.currentCPU = index
            return ""
        },
        MonitorCommand(name: "x", arguments: [ArgumentSpec("fmt", .memoryFormat), ArgumentSpec("addr", .address)],
                       help: "virtual memory dump starting at 'addr'") { args, context in
            let cpu = context.interpreter.currentCPU
            return try MemoryCommands.dump(args, context) { address, count in
                try context.backend.readVirtual(address, count: count, cpu: cpu)
            }
        },
        MonitorCommand(name: "xp", arguments: [ArgumentSpec("fmt", .memoryFormat), ArgumentSpec("addr", .address)],
                       help: "physical memory dump starting at 'addr'") { args, context in
            try MemoryCommands.dump(args, context) { address, count in
                try context.backend.readPhysical(address, count: count)
            }
        },
        MonitorCommand(name: "memsave",
                       arguments: [ArgumentSpec("addr", .address), ArgumentSpec("size", .size),
                                   ArgumentSpec("file", .filename)],
                       params: "addr size file",
                       help: "save to disk virtual memory dump starting at 'addr' of size 'size'") { args, context in
            let cpu = context.interpreter.currentCPU
            try MemoryCommands.save(args) { address, count in
                try context.backend.readVirtual(address, count: count, cpu: cpu)
            }
            return ""
        },
        MonitorCommand(name: "pmemsave",
                       arguments: [ArgumentSpec("addr", .address), ArgumentSpec("size", .size),
                                   ArgumentSpec("file", .filename)],
                       params: "addr size file",
                       help: "save to disk physical memory dump starting at 'addr' of size 'size'") { args, context in
            try MemoryCommands.save(args) { address, count in
                try context.backend.readPhysical(address, count: count)
            }
            return ""
        },
    ]

    static let info: [InfoCommand] = [
        InfoCommand(name: "status", help: "show the current VM status (running|paused)") { _, context in
            "VM status: \(context.backend.runState)\n"
        },
        InfoCommand(name: "version", help: "show the version of swiftkvm") { _, _ in
            "swiftkvm \(SwiftKVMVersion.string)\n"
        },
        InfoCommand(name: "history", help: "show the command line history") { _, context in
            context.interpreter.history.enumerated().map { "\($0): '\($1)'\n" }.joined()
        },
        InfoCommand(name: "cpus", help: "show infos for each CPU") { _, context in
            let current = context.interpreter.currentCPU
            return context.backend.cpus().map { cpu in
                "\(cpu.index == current ? "*" : " ") CPU #\(cpu.index): thread_id=\(cpu.threadID)\(cpu.halted ? " (halted)" : "")\n"
            }.joined()
        },
        InfoCommand(name: "registers",
                    arguments: [.flag("a"), ArgumentSpec("vcpu", .integer(max: UInt64(Int32.max)), optional: true)],
                    params: "[-a|vcpu]",
                    help: "show the cpu registers (-a: show register info for all cpus; vcpu: specific vCPU to query; "
                        + "show the current CPU's registers if no argument is specified)") { args, context in
            try MemoryCommands.registers(args, context)
        },
    ]
}
