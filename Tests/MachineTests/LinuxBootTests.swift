import Glibc
import KVM
@testable import Machine
import SystemSupport
import XCTest

/// The Linux boot protocol on Debian's real kernels and on broken copies of them.
final class LinuxBootTests: XCTestCase {
    private func tempFile(_ bytes: [UInt8]) -> String {
        let path = "/tmp/swiftkvm-linuxboot-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        _ = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        close(fd)
        addTeardownBlock { unlink(path) }
        return path
    }

    /// A file of `size` bytes that costs no disk (the loader refuses it before reading).
    private func sparseFile(size: Int) -> String {
        let path = tempFile([])
        XCTAssertEqual(truncate(path, off_t(size)), 0)
        return path
    }

    private func bootError(_ source: BootSource, ram: UInt64 = 256 << 20) -> BootError? {
        do { _ = try BootImage(source, ramSize: ram); return nil } catch { return error as? BootError }
    }

    private func kernelBytes(_ name: String) throws -> (path: String, bytes: [UInt8]) {
        let path = try LinuxAssets.path(name)
        return (path, try HostFile.readAll(path, limit: 1 << 30))
    }

    private func patched(_ bytes: [UInt8], _ changes: [Int: UInt8]) -> String {
        var b = bytes
        for (at, v) in changes { b[at] = v }
        return tempFile(b)
    }

    func testDebianKernelsHaveA64BitRelocatableSetupHeader() throws {
        for name in ["vmlinuz-cloud", "vmlinuz-generic"] {
            let (path, bytes) = try kernelBytes(name)
            let h = try LinuxSetupHeader(bytes: bytes, path: path)
            XCTAssertGreaterThanOrEqual(h.version, LinuxSetupHeader.minimumVersion, name)
            XCTAssertNotEqual(h.xloadflags & 1, 0, "\(name): XLF_KERNEL_64")
            XCTAssertNotEqual(h.loadFlags & 1, 0, "\(name): LOADED_HIGH")
            XCTAssertTrue(h.relocatable, name)
            XCTAssertEqual(h.preferredAddress, 0x100_0000, name)
            XCTAssertEqual(h.kernelAlignment, 0x20_0000, name)
            XCTAssertEqual(h.initrdAddressMax, 0x7fff_ffff, name)
            XCTAssertGreaterThanOrEqual(h.commandLineSize, 2047, name)
            XCTAssertGreaterThan(UInt64(h.initSize), UInt64(bytes.count - h.kernelOffset), "\(name): init_size covers the unpacked kernel")
            XCTAssertEqual(h.kernelOffset, (Int(bytes[0x1f1]) + 1) * 512, name)
            XCTAssertEqual(h.headerBytes.count, 0x202 + Int(bytes[0x201]) - 0x1f1, name)
            XCTAssertEqual(Array(h.headerBytes.prefix(16)), Array(bytes[0x1f1..<0x201]), name)
        }
    }

    func testZeroPageKernelAndInitrdInRAM() throws {
        let (path, bytes) = try kernelBytes("vmlinuz-generic")
        let initrdBytes = (0..<(3 << 20) + 123).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ 1) }
        let initrd = tempFile(initrdBytes)
        let ram: UInt64 = 256 << 20
        let firmware = FirmwareTables(address: 0xe_0000, bytes: Array("RSD PTR ".utf8), rootPointer: 0xe_0000)
        let image = try BootImage(.kernel(path: path, commandLine: "console=ttyS0 root=/dev/ram0", initrd: initrd),
                                  ramSize: ram, firmware: firmware)
        let memory = try GuestMemory(layout: RAMLayout.ranges(forSize: ram).map { ($0.guestAddress, Int($0.size)) })
        try image.load(into: memory)
        let header = try LinuxSetupHeader(bytes: bytes, path: path)

        XCTAssertEqual(image.entryPoint, 0x100_0200)
        XCTAssertEqual(try memory.read(0x100_0000, count: 4096), Array(bytes[header.kernelOffset..<header.kernelOffset + 4096]))

        let zp = try memory.read(BootImage.bootParamsAddress, count: 4096)
        func u16(_ at: Int) -> UInt16 { UInt16(zp[at]) | UInt16(zp[at + 1]) << 8 }
        func u32(_ at: Int) -> UInt32 { (0..<4).reduce(0) { $0 | UInt32(zp[at + $1]) << (8 * $1) } }
        func u64(_ at: Int) -> UInt64 { (0..<8).reduce(0) { $0 | UInt64(zp[at + $1]) << (8 * $1) } }
        XCTAssertEqual(u16(0x1fe), 0xaa55)
        XCTAssertEqual(Array(zp[0x202..<0x206]), Array("HdrS".utf8))
        XCTAssertEqual(zp[0x210], 0xff, "type_of_loader")
        XCTAssertEqual(u32(0x228), UInt32(BootImage.linuxCommandLineAddress))
        let cmdline = try memory.read(UInt64(u32(0x228)), count: 29)
        XCTAssertEqual(cmdline, Array("console=ttyS0 root=/dev/ram0".utf8) + [0])
        XCTAssertEqual(u64(0x070), 0xe_0000, "acpi_rsdp_addr")

        let initrdAddress = UInt64(u32(0x218)), initrdSize = UInt64(u32(0x21c))
        XCTAssertEqual(initrdSize, UInt64(initrdBytes.count))
        XCTAssertEqual(initrdAddress % 4096, 0)
        XCTAssertLessThanOrEqual(initrdAddress + initrdSize, ram)
        XCTAssertLessThanOrEqual(initrdAddress + initrdSize, UInt64(header.initrdAddressMax) + 1)
        XCTAssertGreaterThanOrEqual(initrdAddress, header.preferredAddress + UInt64(header.initSize), "clear of the unpacking kernel")
        XCTAssertEqual(try memory.read(initrdAddress, count: initrdBytes.count), initrdBytes)

        let entries = Int(zp[0x1e8])
        let e820 = (0..<entries).map { i -> MemoryMap.Entry in
            let at = 0x2d0 + 20 * i
            return MemoryMap.Entry(address: u64(at), size: u64(at + 8), type: MemoryMap.EntryType(rawValue: u32(at + 16)) ?? .reserved)
        }
        XCTAssertEqual(e820, MemoryMap.entries(ramSize: ram))
        XCTAssertEqual(try memory.read(0xe_0000, count: 8), Array("RSD PTR ".utf8))

        // The identity map covers the kernel, the zero page and the initrd with 2 MiB pages.
        let pml4 = try memory.readUInt64(LongModeTables.pml4Address)
        let pdpt = try memory.readUInt64(pml4 & ~0xfff)
        XCTAssertEqual(pdpt & ~0xfff, LongModeTables.firstPageDirectoryAddress)
        for address in [BootImage.bootParamsAddress, 0x100_0000, initrdAddress, 0xffe0_0000] {
            let directory = try memory.readUInt64(pml4 & ~0xfff + (address >> 30) * 8) & ~0xfff
            let pde = try memory.readUInt64(directory + ((address >> 21) & 511) * 8)
            XCTAssertEqual(pde & 0x83, 0x83, "present, writable, 2 MiB at 0x\(String(address, radix: 16))")
            XCTAssertEqual(pde & ~0x1f_ffff, address & ~0x1f_ffff)
        }
        let gdt = try memory.read(LongModeTables.gdtAddress + 0x10, count: 16)
        XCTAssertEqual(gdt, [0xff, 0xff, 0, 0, 0, 0x9b, 0xaf, 0, 0xff, 0xff, 0, 0, 0, 0x93, 0xcf, 0])
    }

    func testMemoryMapFollowsRAMLayout() {
        for ram: UInt64 in [128 << 20, 3 << 30, 5 << 30] {
            let map = MemoryMap.entries(ramSize: ram)
            let ramEntries = map.filter { $0.type == .ram }
            let total = ramEntries.reduce(0) { $0 + $1.size }
            XCTAssertEqual(total, ram - (MemoryMap.highMemoryStart - MemoryMap.ebdaStart), "\(ram)")
            for e in ramEntries {
                XCTAssertTrue(RAMLayout.ranges(forSize: ram).contains { e.address >= $0.guestAddress && e.end <= $0.guestAddress + $0.size })
            }
            for (a, b) in zip(map, map.dropFirst()) { XCTAssertLessThanOrEqual(a.end, b.address, "sorted, no overlap") }
            XCTAssertTrue(map.contains { $0.type == .reserved && $0.address == MemoryMap.biosAreaStart })
            XCTAssertTrue(map.contains { $0.type == .reserved && $0.address == VirtualMachine.identityMapAddress })
        }
    }

    func testPVHKernelGetsInitrdAsModule() throws {
        let initrdBytes: [UInt8] = Array(repeating: 0x5a, count: 10_000)
        let initrd = tempFile(initrdBytes)
        let ram: UInt64 = 64 << 20
        let image = try BootImage(.kernel(path: GuestImages.path("hello.elf"), commandLine: "x", initrd: initrd), ramSize: ram,
                                  firmware: FirmwareTables(address: 0xe_0000, bytes: [1], rootPointer: 0xe_0000))
        let memory = try GuestMemory(layout: [(0, Int(ram))])
        try image.load(into: memory)
        let info = try memory.read(BootImage.startInfoAddress, count: 56)
        func u64(_ at: Int) -> UInt64 { (0..<8).reduce(0) { $0 | UInt64(info[at + $1]) << (8 * $1) } }
        XCTAssertEqual(info[4], 1, "version 1: memory map fields present")
        XCTAssertEqual(info[12], 1, "nr_modules")
        XCTAssertEqual(u64(16), BootImage.moduleListAddress)
        XCTAssertEqual(u64(32), 0xe_0000, "rsdp_paddr")
        let module = try memory.read(BootImage.moduleListAddress, count: 16)
        let address = (0..<8).reduce(UInt64(0)) { $0 | UInt64(module[$1]) << (8 * $1) }
        let size = (0..<8).reduce(UInt64(0)) { $0 | UInt64(module[8 + $1]) << (8 * $1) }
        XCTAssertEqual(size, 10_000)
        XCTAssertEqual(address % 4096, 0)
        XCTAssertLessThanOrEqual(address + size, ram)
        XCTAssertEqual(try memory.read(address, count: 10_000), initrdBytes)
    }

    // MARK: Broken kernels and initrds: each a clear error before anything runs

    func testTruncatedBzImage() throws {
        let (_, bytes) = try kernelBytes("vmlinuz-cloud")
        for cut in [0x206, 0x250, 0x263, 0x1000, bytes.count / 2, bytes.count - 4096] {
            let path = tempFile(Array(bytes[0..<cut]))
            guard case .truncatedKernel(_, let size, _)? = bootError(.kernel(path: path, commandLine: "")) else {
                return XCTFail("cut at \(cut): \(String(describing: bootError(.kernel(path: path, commandLine: ""))))")
            }
            XCTAssertEqual(size, cut)
        }
    }

    func testOldProtocol32BitAndZImageAreRefused() throws {
        let (_, bytes) = try kernelBytes("vmlinuz-cloud")
        let old = patched(bytes, [0x206: 0x0b, 0x207: 0x02])
        XCTAssertEqual(bootError(.kernel(path: old, commandLine: "")), .bootProtocolTooOld(path: old, version: 0x020b, minimum: 0x020c))
        XCTAssertTrue(BootError.bootProtocolTooOld(path: "k", version: 0x020b, minimum: 0x020c).description.contains("2.11"))
        let only32 = patched(bytes, [0x236: bytes[0x236] & ~1])
        XCTAssertEqual(bootError(.kernel(path: only32, commandLine: "")), .kernelNot64Bit(path: only32))
        let zImage = patched(bytes, [0x211: bytes[0x211] & ~1])
        XCTAssertEqual(bootError(.kernel(path: zImage, commandLine: "")), .notBzImage(path: zImage))
        let garbage = tempFile(Array(repeating: 0x41, count: 4096))
        XCTAssertEqual(bootError(.kernel(path: garbage, commandLine: "")), .notKernel(path: garbage))
    }

    func testKernelTooBigForRAM() throws {
        let (path, bytes) = try kernelBytes("vmlinuz-generic")
        let h = try LinuxSetupHeader(bytes: bytes, path: path)
        let needed = h.preferredAddress + UInt64(h.initSize)
        XCTAssertEqual(bootError(.kernel(path: path, commandLine: ""), ram: 64 << 20),
                       .kernelTooBigForRAM(path: path, needed: needed, ramSize: 64 << 20))
        XCTAssertNil(bootError(.kernel(path: path, commandLine: ""), ram: (needed + 0xfffff) & ~0xfffff))
    }

    func testInitrdThatDoesNotFitOrIsMissing() throws {
        let path = try LinuxAssets.path("vmlinuz-generic")
        let big = sparseFile(size: 200 << 20)
        guard case .initrdTooBigForRAM(_, let size, let room)? = bootError(.kernel(path: path, commandLine: "", initrd: big), ram: 256 << 20) else {
            return XCTFail()
        }
        XCTAssertEqual(size, 200 << 20)
        XCTAssertLessThan(room, 200 << 20)
        let empty = tempFile([])
        XCTAssertEqual(bootError(.kernel(path: path, commandLine: "", initrd: empty)), .emptyInitrd(path: empty))
        guard case .cannotRead(let missing, _)? = bootError(.kernel(path: path, commandLine: "", initrd: "/nonexistent/initrd")) else { return XCTFail() }
        XCTAssertEqual(missing, "/nonexistent/initrd")
        // The initrd limit of a PVH kernel is low RAM too.
        guard case .initrdTooBigForRAM? = bootError(.kernel(path: GuestImages.path("hello.elf"), commandLine: "", initrd: big), ram: 64 << 20) else {
            return XCTFail()
        }
    }

    func testCommandLineLongerThanTheKernelTakes() throws {
        let path = try LinuxAssets.path("vmlinuz-cloud")
        XCTAssertEqual(bootError(.kernel(path: path, commandLine: String(repeating: "a", count: 2048))),
                       .commandLineTooLong(length: 2048, limit: 2047))
        XCTAssertNil(bootError(.kernel(path: path, commandLine: String(repeating: "a", count: 2047))))
    }
}
