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

    /// In the order `-h` and the README's "Command line" table list them; help texts are plain
    /// text, one line each (the README's table is `markdownTable`, checked by a test).
    static let options: [Option] = [
        Option(names: ["m"], argument: "[size=]SIZE", help: "guest RAM; a bare number is MiB, sizes as below (default 128M; 2 MiB to 64 GiB)") { config, text in
            config.memorySize = try MachineOptionParsing.memorySize(text)
            config.memorySizeGiven = true
        },
        Option(names: ["machine", "M"], argument: "memory-backend=ID", help: "take guest RAM from the -object with that id (its size is the RAM size; -m, if given, must match)") { config, text in
            config.machineMemoryBackend = try MachineOptionParsing.machine(text)
        },
        Option(names: ["mem-prealloc"], argument: nil, help: "commit all guest RAM before the guest runs; a mapped-ram snapshot is then read in whole (and checked page by page) instead of mapped") { config, _ in
            config.preallocateMemory = true
        },
        Option(names: ["kernel"], argument: "FILE", help: "boot a Linux bzImage through the 64-bit boot protocol, or an ELF with a PVH entry note (XEN_ELFNOTE_PHYS32_ENTRY) in 32-bit protected mode; the format is recognised from the file (see \"Linux guests\" in the README)") { config, text in
            guard !text.isEmpty else {
                throw OptionError.invalidValue(option: "-kernel", value: text, expected: "give the kernel's path")
            }
            config.kernel = text
        },
        Option(names: ["append"], argument: "CMDLINE", help: "the kernel's command line (boot_params' cmd_line_ptr, or hvm_start_info)") { config, text in
            config.append = text
        },
        Option(names: ["initrd"], argument: "FILE", help: "an initial RAM disk for the -kernel: the bzImage's ramdisk_image, or the PVH hvm_start_info module 0; placed as high in RAM as the kernel allows") { config, text in
            guard !text.isEmpty else {
                throw OptionError.invalidValue(option: "-initrd", value: text, expected: "give the initrd's path")
            }
            config.initrd = text
        },
        Option(names: ["drive"], argument: "file=IMG[,format=raw]", help: "a boot sector (512 bytes ending in 0x55AA), entered in real mode at 0000:7c00 with DL=0x80, no BIOS services (repeatable; if= is ignored)") { config, text in
            config.drives.append(try MachineOptionParsing.drive(text, warnings: &config.warnings))
        },
        Option(names: ["device"], argument: "isa-debug-exit[,iobase=0xf4][,iosize=0x04]", help: "a guest write of V ends swiftkvm with status (V << 1) | 1") { config, text in
            config.debugExit = try MachineOptionParsing.device(text)
        },
        Option(names: ["S"], argument: nil, help: "start paused (VM status: paused (prelaunch)); cont starts the guest") { config, _ in
            config.startPaused = true
        },
        Option(names: ["serial"], argument: "stdio|null|file:PATH|pty|unix:PATH,server[,nowait]|tcp:HOST:PORT,server[,nowait]", help: "where the guest's COM1 goes (default stdio; see \"For operators\" in the README)") { config, text in
            config.serial = try EndpointParsing.serial(text)
        },
        Option(names: ["monitor"], argument: "stdio|none|unix:PATH,server[,nowait]|tcp:HOST:PORT,server[,nowait][,tls-creds=ID][,tls-authz=ID]", help: "where the human monitor goes (default stdio); on a socket each command line gets its output and a fresh (monitor) prompt, and lines that arrive on their own (migration progress) come between commands, followed by a prompt too; tcp: with tls-creds speaks TLS and tls-authz lets one identity in (see \"Locking down QMP and the monitor\" in the README)") { config, text in
            config.monitor = try EndpointParsing.monitor(text)
        },
        Option(names: ["qmp"], argument: "unix:PATH,server[,nowait]|tcp:HOST:PORT,server[,nowait][,tls-creds=ID][,tls-authz=ID]", help: "a QMP server for tools (repeatable; see \"For tool authors: QMP\" in the README); tcp: with tls-creds speaks TLS and tls-authz lets one identity in, as for -monitor") { config, text in
            config.qmp.append(try EndpointParsing.qmp(text))
        },
        Option(names: ["daemonize"], argument: nil, help: "run in the background once everything is set up (serial and monitor must not be on stdio)") { config, _ in
            config.daemonize = true
        },
        Option(names: ["pidfile"], argument: "FILE", help: "write the process id to FILE, locked; removed at exit") { config, text in
            guard !text.isEmpty else {
                throw OptionError.invalidValue(option: "-pidfile", value: text, expected: "give the file's path")
            }
            config.pidFile = text
        },
        Option(names: ["nographic"], argument: nil, help: "serial port and monitor on the terminal (the default)") { config, _ in
            config.nographic = true
        },
        Option(names: ["name"], argument: "[guest=]NAME", help: "the guest's name (info name)") { config, text in
            config.name = try MachineOptionParsing.name(text)
        },
        Option(names: ["smp"], argument: "[cpus=]N[,maxcpus=N][,sockets=1][,dies=1][,cores=N][,threads=1]", help: "N vCPUs (default 1), one socket of N cores, up to what KVM allows (KVM_CAP_MAX_VCPUS); vCPU 0 boots, the others wait for the guest's INIT and start-up IPIs; other topologies and maxcpus other than N are refused") { config, text in
            config.cpuCount = try SMPOption.cpuCount(text)
        },
        Option(names: ["incoming"], argument: "tcp:HOST:PORT|unix:PATH|file:PATH|exec:CMD|stdio|defer", help: "wait for a migration instead of booting, or start from a snapshot file (see \"Live migration\", \"For operators\" and \"When things go wrong\" in the README)") { config, text in
            config.incoming = try EndpointParsing.incoming(text)
        },
        Option(names: ["object"], argument: "memory-backend-memfd|tls-creds-x509|tls-creds-psk|authz-simple,id=ID[,PROP=VALUE...]", help: "memory-backend-memfd,id=ID,size=SIZE[,share=on]: guest RAM in a memfd, shared, for -machine memory-backend=ID, which a unix: migration with x-ignore-shared on hands over instead of copying (see \"Same-host handoff\" in the README); TLS credentials (dir=DIR,endpoint=server|client, and verify-peer=on|off or username=NAME) or an authz-simple identity=ID for migration's tls-creds and tls-authz and those of -qmp and -monitor tcp:, with QEMU's properties and file names (see \"Security\" in the README)") { config, text in
            if MachineOptionParsing.isMemoryBackend(text) {
                config.memoryBackends.append(try MachineOptionParsing.memoryBackend(text))
            } else {
                config.objects.append(try MachineOptionParsing.object(text))
            }
        },
        Option(names: ["enable-kvm"], argument: nil, help: "accepted for QEMU muscle memory; KVM is always used") { _, _ in },
        Option(names: ["accel"], argument: "kvm", help: "accepted for QEMU muscle memory; only kvm is available") { _, text in
            guard text == "kvm" else {
                throw OptionError.unsupported(option: "-accel \(text)", reason: "only kvm is available")
            }
        },
        Option(names: ["h", "help"], argument: nil, help: "print this help and exit") { config, _ in
            config.action = .showHelp
        },
        Option(names: ["version"], argument: nil, help: "print the version and exit") { config, _ in
            config.action = .showVersion
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

    /// `-h`: the options, then how sizes are written.
    static let usage: String = {
        var lines = ["usage: swiftkvm [options]", "", "Options take one dash or two (-help, --help):"]
        let left = options.map { option in
            "-" + option.names.joined(separator: "|-") + (option.argument.map { " " + $0 } ?? "")
        }
        // Long argument forms stay on their line rather than push every description right.
        let width = min(30, left.map(\.count).max() ?? 0)
        for (text, option) in zip(left, options) {
            lines.append(text + String(repeating: " ", count: max(2, width + 2 - text.count)) + option.help)
        }
        lines += ["", sizeRules]
        return lines.joined(separator: "\n") + "\n"
    }()

    /// How sizes are written (`-m` here; the monitor and max-bandwidth read them the same way).
    static let sizeRules = """
        Sizes: a decimal or 0x hexadecimal number, or a decimal fraction such as 1.5, then at most \
        one suffix B, K, M, G, T, P or E (any case, powers of 1024).
        """

    /// The README's "Command line" table: the same options and words as `-h`.
    static let markdownTable: String = {
        var rows = ["| option | meaning |", "| --- | --- |"]
        for option in options {
            let spellings = option.names.map { "`-\($0)\(option.argument.map { " " + $0 } ?? "")`" }
            let cell = { (text: String) in text.split(separator: "|", omittingEmptySubsequences: false).joined(separator: "\\|") }
            rows.append("| \(cell(spellings.joined(separator: ", "))) | \(cell(option.help)) |")
        }
        return rows.joined(separator: "\n") + "\n"
    }()
}
