import XCTest
@testable import swiftkvm

final class OptionParserTests: XCTestCase {
    func testDefaults() throws {
        let config = try parse()
        XCTAssertEqual(config, Configuration())
        XCTAssertEqual(config.action, .run)
        XCTAssertEqual(config.memorySize, 128 << 20)
        XCTAssertNil(config.kernel)
        XCTAssertNil(config.serial)
        XCTAssertNil(config.monitor)
        XCTAssertEqual(config.cpuCount, 1)
        XCTAssertFalse(config.startPaused)
        XCTAssertFalse(config.nographic)
    }

    func testMemory() throws {
        XCTAssertEqual(try parse("-m", "512").memorySize, 512 << 20)
        XCTAssertEqual(try parse("-m", "2G").memorySize, 2 << 30)
        XCTAssertEqual(try parse("-m", "4096K").memorySize, 4 << 20)
        XCTAssertEqual(try parse("-m", "size=512M").memorySize, 512 << 20)
        XCTAssertEqual(try parse("-m", "2").memorySize, 2 << 20, "the smallest allowed")
        XCTAssertEqual(try parse("-m", "64G").memorySize, 64 << 30, "the largest allowed")
        XCTAssertEqual(try parse("-m", "3000001B").memorySize, 3002368, "rounded up to whole pages")
        XCTAssertEqual(try parse("-m", "256", "-m", "1G").memorySize, 1 << 30, "last one wins")
    }

    func testMemoryErrors() {
        XCTAssertOptionError(["-m", "12Q"], .invalidSize(option: "-m", text: "12Q", problem: .unknownSuffix("Q")))
        XCTAssertEqual("\(OptionError.invalidSize(option: "-m", text: "12Q", problem: .unknownSuffix("Q")))",
                       "swiftkvm: -m: invalid size '12Q' (use a number with an optional B, K, M, G, T, P or E suffix)")
        XCTAssertOptionError(["-m", "0"], .memoryTooSmall(text: "0"))
        XCTAssertOptionError(["-m", "1"], .memoryTooSmall(text: "1"))
        XCTAssertOptionError(["-m", "2047K"], .memoryTooSmall(text: "2047K"))
        XCTAssertOptionError(["-m", "65537M"], .memoryTooLarge(text: "65537M"))
        XCTAssertOptionError(["-m", "-128"], .invalidSize(option: "-m", text: "-128", problem: .negative))
        XCTAssertOptionError(["-m", ""], .invalidSize(option: "-m", text: "", problem: .empty))
        XCTAssertOptionMessage(["-m", "99999999999999999999999G"], contains: "-m 99999999999999999999999G: too much memory")
        XCTAssertOptionMessage(["-m", "18446744073709551615"], contains: "too much memory (at most 64 GiB)")
        XCTAssertOptionMessage(["-m", "1M"], contains: "-m 1M: too little memory")
        XCTAssertOptionMessage(["-m", "512,maxmem=1G"], contains: "unknown property 'maxmem'")
        XCTAssertOptionError(["-m"], .missingArgument(option: "-m"))
        XCTAssertEqual("\(OptionError.missingArgument(option: "-kernel"))", "swiftkvm: -kernel: missing argument")
    }

    func testKernelAndAppend() throws {
        let config = try parse("-kernel", "guest.elf", "-append", "console=ttyS0 quiet")
        XCTAssertEqual(config.kernel, "guest.elf")
        XCTAssertEqual(config.append, "console=ttyS0 quiet")
        XCTAssertEqual(try parse("-append", "").append, "")
        XCTAssertEqual(try parse("-kernel", "a", "-kernel", "b").kernel, "b")
        XCTAssertOptionMessage(["-kernel", ""], contains: "-kernel: invalid value ''")
        XCTAssertOptionError(["-kernel"], .missingArgument(option: "-kernel"))
        XCTAssertOptionError(["-append"], .missingArgument(option: "-append"))
    }

    func testInitrdGoesWithTheKernel() throws {
        let config = try parse("-kernel", "vmlinuz", "-initrd", "initrd.img", "-append", "console=ttyS0")
        XCTAssertEqual(config.initrd, "initrd.img")
        XCTAssertEqual(try config.machineConfiguration(defaultKernel: { nil }).boot,
                       .kernel(path: "vmlinuz", commandLine: "console=ttyS0", initrd: "initrd.img"))
        XCTAssertOptionMessage(["-initrd", ""], contains: "-initrd: invalid value ''")
        XCTAssertOptionError(["-initrd"], .missingArgument(option: "-initrd"))
        XCTAssertThrowsError(try parse("-initrd", "initrd.img").machineConfiguration(defaultKernel: { "hello.elf" })) { error in
            XCTAssertEqual("\(error)", "-initrd only allowed with -kernel option")
        }
    }

    func testDrivesAccumulate() throws {
        let config = try parse("-drive", "file=a.img,format=raw", "-drive", "file=b,,c.img,format=raw,if=ide")
        XCTAssertEqual(config.drives.map(\.file), ["a.img", "b,c.img"])
        XCTAssertEqual(config.warnings, [])
    }

    func testDriveWithoutFormatWarns() throws {
        let config = try parse("-drive", "file=disk.img")
        XCTAssertEqual(config.drives, [Configuration.Drive(file: "disk.img", format: "raw")])
        XCTAssertEqual(config.warnings.count, 1)
        XCTAssertTrue(config.warnings[0].contains("format=raw"))
    }

    func testDriveErrors() {
        XCTAssertOptionError(["-drive", "file=a.qcow2,format=qcow2"], .unsupportedFormat("qcow2"))
        XCTAssertOptionMessage(["-drive", "file=a,format=qcow2"], contains: "only format=raw is supported")
        XCTAssertOptionError(["-drive", "format=raw"], .missingProperty(option: "-drive", property: "file"))
        XCTAssertOptionMessage(["-drive", "file="], contains: "-drive: invalid value 'file='")
        XCTAssertOptionMessage(["-drive", "file=a,cache=none"], contains: "unknown property 'cache'")
        XCTAssertOptionMessage(["-drive", "a.img"], contains: "unknown property 'a.img'")
        XCTAssertOptionMessage(["-drive", ""], contains: "-drive")
    }

    func testDebugExitDevice() throws {
        XCTAssertEqual(try parse("-device", "isa-debug-exit").debugExit, Configuration.DebugExitDevice(iobase: 0xf4, iosize: 4))
        XCTAssertEqual(try parse("-device", "isa-debug-exit,iobase=0xf4,iosize=0x04").debugExit,
                       Configuration.DebugExitDevice(iobase: 0xf4, iosize: 4))
        XCTAssertEqual(try parse("-device", "isa-debug-exit,iobase=0x501,iosize=2").debugExit,
                       Configuration.DebugExitDevice(iobase: 0x501, iosize: 2))
        XCTAssertEqual(try parse("-device", "driver=isa-debug-exit,iobase=256").debugExit?.iobase, 256)
    }

    func testDeviceErrors() {
        XCTAssertOptionError(["-device", "virtio-net"], .unsupportedDevice("virtio-net"))
        XCTAssertOptionMessage(["-device", "e1000,netdev=n"], contains: "unsupported device 'e1000' (supported: isa-debug-exit)")
        XCTAssertOptionMessage(["-device", "isa-debug-exit,iobase=0x10000"], contains: "iobase=0x10000")
        XCTAssertOptionMessage(["-device", "isa-debug-exit,iobase=-1"], contains: "iobase=-1")
        XCTAssertOptionMessage(["-device", "isa-debug-exit,iobase=0x-1"], contains: "iobase=0x-1")
        XCTAssertOptionMessage(["-device", "isa-debug-exit,iobase=zz"], contains: "iobase=zz")
        XCTAssertOptionMessage(["-device", "isa-debug-exit,iosize=0"], contains: "iosize=0")
        XCTAssertOptionMessage(["-device", "isa-debug-exit,iobase=0xffff,iosize=2"], contains: "0xffff")
        XCTAssertOptionMessage(["-device", "isa-debug-exit,bogus=1"], contains: "unknown property 'bogus' (supported: iobase, iosize)")
        XCTAssertOptionMessage(["-device", "iobase=0xf4"], contains: "unsupported device")
        XCTAssertOptionMessage(["-device", ""], contains: "unsupported device ''")
    }

    func testFlags() throws {
        let config = try parse("-S", "-nographic", "-enable-kvm", "-accel", "kvm")
        XCTAssertTrue(config.startPaused)
        XCTAssertTrue(config.nographic)
        XCTAssertOptionMessage(["-accel", "tcg"], contains: "only kvm is available")
    }

    func testName() throws {
        XCTAssertEqual(try parse("-name", "vm1").name, "vm1")
        XCTAssertEqual(try parse("-name", "guest=vm2").name, "vm2")
        XCTAssertEqual(try parse("-name", "a", "-name", "b").name, "b")
        XCTAssertOptionMessage(["-name", ""], contains: "-name")
        XCTAssertOptionMessage(["-name", "guest=x,debug-threads=on"], contains: "unknown property 'debug-threads'")
    }

    func testSMPTakesQEMUsSpellingsOfTheCPUCount() throws {
        XCTAssertEqual(try parse().cpuCount, 1)
        XCTAssertEqual(try parse("-smp", "1").cpuCount, 1)
        XCTAssertEqual(try parse("-smp", "4").cpuCount, 4)
        XCTAssertEqual(try parse("-smp", "cpus=8").cpuCount, 8)
        XCTAssertEqual(try parse("-smp", "3,maxcpus=3").cpuCount, 3)
        XCTAssertEqual(try parse("-smp", "1,sockets=1,cores=1,threads=1").cpuCount, 1)
        XCTAssertEqual(try parse("-smp", "6,sockets=1,dies=1,cores=6,threads=1").cpuCount, 6)
        XCTAssertEqual(try parse("-smp", "cores=5").cpuCount, 5, "the count follows from the topology, as in QEMU")
        XCTAssertEqual(try parse("-smp", "maxcpus=2").cpuCount, 2)
        XCTAssertEqual(try parse("-smp", "2", "-smp", "7").cpuCount, 7, "the last -smp wins")
        XCTAssertEqual(try parse("-smp", "1024").cpuCount, 1024)
    }

    func testSMPRefusesWhatItCannotGiveTheGuest() throws {
        XCTAssertOptionMessage(["-smp", "0"], contains: "-smp 0: the CPU count must be at least 1")
        XCTAssertOptionMessage(["-smp", "1025"], contains: "-smp 1025: at most 1024 vCPUs")
        XCTAssertOptionMessage(["-smp", "4,maxcpus=8"], contains: "maxcpus=8 differs from the CPU count 4; CPU hotplug is not supported")
        XCTAssertOptionMessage(["-smp", "4,sockets=2"],
                               contains: "-smp 4,sockets=2: sockets=2 does not match the topology swiftkvm gives the guest: one socket of 4 cores with one thread each")
        XCTAssertOptionMessage(["-smp", "4,cores=2,threads=2"], contains: "cores=2 does not match")
        XCTAssertOptionMessage(["-smp", "4,threads=2"], contains: "threads=2 does not match")
        XCTAssertOptionMessage(["-smp", "2,dies=2"], contains: "dies=2 does not match")
        XCTAssertOptionMessage(["-smp", "sockets=2"], contains: "sockets=2 does not match")
        XCTAssertOptionMessage(["-smp", "two"], contains: "-smp: invalid value 'two'")
        XCTAssertOptionMessage(["-smp", "-1"], contains: "-smp: invalid value '-1'")
        XCTAssertOptionMessage(["-smp", "+2"], contains: "-smp: invalid value '+2'")
        XCTAssertOptionMessage(["-smp", "99999999999999999999999"], contains: "-smp")
        XCTAssertOptionMessage(["-smp", "1,nodes=2"], contains: "unknown property 'nodes'")
    }

    func testHelpAndVersion() throws {
        for spelling in ["-h", "-help", "--help"] {
            XCTAssertEqual(try parse(spelling).action, .showHelp, spelling)
        }
        for spelling in ["-version", "--version"] {
            XCTAssertEqual(try parse(spelling).action, .showVersion, spelling)
        }
        XCTAssertEqual(try parse("-m", "256", "-help", "-bogus").action, .showHelp, "stops at -help, as QEMU does")
        XCTAssertOptionError(["-bogus", "-help"], .unknownOption("-bogus"))
    }

    func testDoubleDashSpellings() throws {
        XCTAssertEqual(try parse("--m", "256", "--S").memorySize, 256 << 20)
    }

    func testUnknownAndStrayArguments() {
        XCTAssertOptionError(["-foo"], .unknownOption("-foo"))
        XCTAssertEqual("\(OptionError.unknownOption("-foo"))", "swiftkvm: unknown option '-foo' (see -help)")
        XCTAssertOptionError(["--"], .unknownOption("--"))
        XCTAssertOptionError(["-"], .unexpectedArgument("-"))
        XCTAssertOptionError([""], .unexpectedArgument(""))
        XCTAssertOptionError(["disk.img"], .unexpectedArgument("disk.img"))
        XCTAssertOptionMessage(["disk.img"], contains: "-drive file=disk.img,format=raw")
        XCTAssertOptionError(["-machine", "pc"], .unknownProperty(option: "-machine", property: "pc", supported: ["memory-backend"]))
        XCTAssertOptionError(["-M"], .missingArgument(option: "-M"))
    }

    func testUsageListsEveryOptionOnItsOwnLine() {
        let lines = CommandLineParser.usage.split(separator: "\n")
        for option in CommandLineParser.options {
            let matching = lines.filter { $0.hasPrefix("-" + option.names[0] + " ") || $0.hasPrefix("-" + option.names[0] + "|") }
            XCTAssertEqual(matching.count, 1, option.names[0])
            XCTAssertTrue(matching.first?.contains(option.help) ?? false, option.names[0])
        }
        XCTAssertTrue(CommandLineParser.usage.hasPrefix("usage: swiftkvm"))
    }
}
