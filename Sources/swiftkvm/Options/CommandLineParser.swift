/// QEMU-style command-line options, declared once in `options`: parsing and the help text both
/// come from that table. Options start with one dash; a second dash is accepted, as QEMU does.
enum CommandLineParser {
    struct Option {
        /// Spellings without the leading dash; the first is shown in the help text.
        var names: [String]
        /// Placeholder shown in the help text; nil for options that take no argument.
        var argument: String?
        var help: String
        var apply: (inout Configuration, String) throws -> Void
    }

    static let version = "swiftkvm version 0.1.0 (QEMU-compatible command line)"

    static let options: [Option] = [
        Option(names: ["h", "help"], argument: nil, help: "print this help and exit") { config, _ in
            config.action = .showHelp
        },
        Option(names: ["version"], argument: nil, help: "print the version and exit") { config, _ in
            config.action = .showVersion
        },
        Option(names: ["m"], argument: "[size=]SIZE", help: "guest RAM; a bare number is MiB, K/M/G suffixes allowed (default 128M)") { config, text in
            config.memorySize = try MachineOptionParsing.memorySize(text)
        },
        Option(names: ["smp"], argument: "[cpus=]1", help: "number of vCPUs (only 1 for now)") { config, text in
            config.cpuCount = try MachineOptionParsing.cpuCount(text)
        },
        Option(names: ["kernel"], argument: "FILE", help: "boot this kernel: a Linux bzImage or an ELF with a PVH entry note") { config, text in
            guard !text.isEmpty else {
                throw OptionError.invalidValue(option: "-kernel", value: text, expected: "give the kernel's path")
            }
            config.kernel = text
        },
        Option(names: ["append"], argument: "CMDLINE", help: "kernel command line") { config, text in
            config.append = text
        },
        Option(names: ["initrd"], argument: "FILE", help: "initial ram disk for the -kernel (Linux initrd, PVH module)") { config, text in
            guard !text.isEmpty else {
                throw OptionError.invalidValue(option: "-initrd", value: text, expected: "give the initrd's path")
            }
            config.initrd = text
        },
        Option(names: ["drive"], argument: "file=FILE[,format=raw]", help: "add a raw disk image (repeatable; if= is ignored)") { config, text in
            config.drives.append(try MachineOptionParsing.drive(text, warnings: &config.warnings))
        },
        Option(names: ["device"], argument: "DRIVER[,PROP=VALUE...]", help: "add a device: isa-debug-exit[,iobase=0xf4][,iosize=0x04] (writing V exits with status (V << 1) | 1)") { config, text in
            config.debugExit = try MachineOptionParsing.device(text)
        },
        Option(names: ["serial"], argument: "DEV", help: "serial port: stdio, null, file:PATH, pty, unix:PATH or tcp:HOST:PORT (sockets take ,server,nowait)") { config, text in
            config.serial = try EndpointParsing.serial(text)
        },
        Option(names: ["monitor"], argument: "DEV", help: "human monitor: stdio, none or unix:PATH[,server][,nowait]") { config, text in
            config.monitor = try EndpointParsing.monitor(text)
        },
        Option(names: ["qmp"], argument: "DEV", help: "QMP server for tools (repeatable): unix:PATH,server[,nowait] or tcp:HOST:PORT,server[,nowait]") { config, text in
            config.qmp.append(try EndpointParsing.qmp(text))
        },
        Option(names: ["daemonize"], argument: nil, help: "run in the background once set up (serial and monitor must not use stdio)") { config, _ in
            config.daemonize = true
        },
        Option(names: ["pidfile"], argument: "FILE", help: "write the process id to FILE (locked; removed at exit)") { config, text in
            guard !text.isEmpty else {
                throw OptionError.invalidValue(option: "-pidfile", value: text, expected: "give the file's path")
            }
            config.pidFile = text
        },
        Option(names: ["nographic"], argument: nil, help: "no display; serial port and monitor on the terminal") { config, _ in
            config.nographic = true
        },
        Option(names: ["S"], argument: nil, help: "do not start the CPU at startup (use 'cont' in the monitor)") { config, _ in
            config.startPaused = true
        },
        Option(names: ["name"], argument: "[guest=]NAME", help: "name of the guest, shown by the monitor") { config, text in
            config.name = try MachineOptionParsing.name(text)
        },
        Option(names: ["incoming"], argument: "URI", help: "wait for a migration: tcp:HOST:PORT, unix:PATH, exec:CMD, stdio or defer") { config, text in
            config.incoming = try EndpointParsing.incoming(text)
            config.incomingURI = text
        },
        Option(names: ["enable-kvm"], argument: nil, help: "accepted for QEMU compatibility; KVM is always used") { _, _ in },
        Option(names: ["accel"], argument: "kvm", help: "accepted for QEMU compatibility; only kvm is available") { _, text in
            guard text == "kvm" else {
                throw OptionError.unsupported(option: "-accel \(text)", reason: "only kvm is available")
            }
        },
    ]

    /// Reads `arguments` (without the program name). Stops at -help or -version, as QEMU does.
    static func parse(_ arguments: [String]) throws -> Configuration {
        var config = Configuration()
        var index = 0
        while index < arguments.count {
            let argument = arguments[index]
            index += 1
            guard argument.hasPrefix("-"), argument.count > 1 else {
                throw OptionError.unexpectedArgument(argument)
            }
            let name = argument.hasPrefix("--") ? String(argument.dropFirst(2)) : String(argument.dropFirst())
            guard let option = options.first(where: { $0.names.contains(name) }) else {
                throw OptionError.unknownOption(argument)
            }
            var value = ""
            if option.argument != nil {
                guard index < arguments.count else { throw OptionError.missingArgument(option: argument) }
                value = arguments[index]
                index += 1
            }
            try option.apply(&config, value)
            if config.action != .run { return config }
        }
        return config
    }

    static let usage: String = {
        var lines = ["usage: swiftkvm [options]", ""]
        let left = options.map { option in
            "-" + option.names.joined(separator: "|-") + (option.argument.map { " " + $0 } ?? "")
        }
        // Long argument forms stay on their line rather than push every description right.
        let width = min(30, left.map(\.count).max() ?? 0)
        for (text, option) in zip(left, options) {
            lines.append(text + String(repeating: " ", count: max(2, width + 2 - text.count)) + option.help)
        }
        return lines.joined(separator: "\n") + "\n"
    }()
}
