import Devices

/// The ACPI tables the VMM writes for a kernel (there is no firmware to do it): RSDP, XSDT,
/// a PC FADT (PM1a blocks of ACPIPM, SCI 9, reset through the i8042), FACS, a DSDT in AML
/// (COM1, the PS/2 keyboard controller, every vCPU, \_S5) and a MADT (a LAPIC per vCPU, the
/// IOAPIC, the ISA interrupt overrides). They go in the BIOS area at 0xE0000, where Linux
/// also finds the RSDP by scanning; the boot protocols pass its address too.
enum ACPITables {
    static let baseAddress: UInt64 = MemoryMap.biosAreaStart
    static let areaSize = Int(MemoryMap.highMemoryStart - MemoryMap.biosAreaStart)

    static let oemID = Array("SWIFTK".utf8)
    static let oemTableID = Array("SWIFTKVM".utf8)
    static let creatorID = Array("SKVM".utf8)

    static let localAPICAddress: UInt32 = 0xfee0_0000
    static let ioAPICAddress: UInt32 = 0xfec0_0000
    /// KVM's in-kernel IOAPIC resets with ID 0 (QEMU's MADT says 0 too).
    static let ioAPICID: UInt8 = 0
    static let serialIRQ = 4
    static let keyboardIRQ = 1

    /// The MADT's processor entries carry 8-bit xAPIC IDs 0..<vcpuCount, and 0xFF is broadcast.
    static let maxVCPUCount = 255

    /// Every table, laid out from baseAddress, with the RSDP first; `vcpuCount` at most
    /// `maxVCPUCount`.
    static func build(vcpuCount: Int) -> FirmwareTables {
        var blob = [UInt8]()
        func place(_ bytes: [UInt8], align: Int = 16) -> UInt64 {
            while blob.count % align != 0 { blob.append(0) }
            let at = baseAddress + UInt64(blob.count)
            blob += bytes
            return at
        }
        // The RSDP needs the XSDT's address, the XSDT the others': reserve, then fill in.
        _ = place([UInt8](repeating: 0, count: rsdpLength))
        let facs = place(self.facs(), align: 64)
        let dsdt = place(self.dsdt(vcpuCount: vcpuCount))
        let fadt = place(self.fadt(facs: facs, dsdt: dsdt))
        let madt = place(self.madt(apicIDs: (0..<vcpuCount).map(UInt8.init)))
        let xsdt = place(self.xsdt([fadt, madt]))
        blob.replaceSubrange(0..<rsdpLength, with: rsdp(xsdt: xsdt))
        return FirmwareTables(address: baseAddress, bytes: blob, rootPointer: baseAddress)
    }

    // MARK: The tables

    static let rsdpLength = 36

    static func rsdp(xsdt: UInt64) -> [UInt8] {
        var b = LittleEndianBytes()
        b.bytes += Array("RSD PTR ".utf8)
        b.u8(0)  // checksum of the first 20 bytes
        b.bytes += oemID
        b.u8(2)  // revision: ACPI 2.0+, with XSDT
        b.u32(0)  // no RSDT
        b.u32(UInt32(rsdpLength))
        b.u64(xsdt)
        b.u8(0)  // extended checksum
        b.bytes += [0, 0, 0]
        var bytes = b.bytes
        bytes[8] = checksum(bytes[0..<20])
        bytes[32] = checksum(bytes[0..<36])
        return bytes
    }

    static func xsdt(_ tables: [UInt64]) -> [UInt8] {
        var b = LittleEndianBytes()
        for t in tables { b.u64(t) }
        return table("XSDT", revision: 1, body: b.bytes)
    }

    static let fadtLength = 276
    /// FADT flags: WBINVD works, C1 on all CPUs, no fixed sleep button, RESET_REG supported.
    /// PWR_BUTTON (bit 4) stays clear: the power button is the fixed-feature one.
    static let fadtFlags: UInt32 = 1 << 0 | 1 << 2 | 1 << 5 | 1 << 10
    /// IA-PC boot architecture flags: legacy ISA devices, an 8042, no VGA.
    static let bootArchitectureFlags: UInt16 = 1 << 0 | 1 << 1 | 1 << 2
    /// The reset register: the i8042's command port, pulse reset (as on many PCs).
    static let resetPort: UInt64 = 0x64
    static let resetValue: UInt8 = 0xfe

    static func fadt(facs: UInt64, dsdt: UInt64) -> [UInt8] {
        var b = LittleEndianBytes()
        b.u32(UInt32(facs))  // FIRMWARE_CTRL
        b.u32(UInt32(dsdt))  // DSDT
        b.u8(0)  // reserved (INT_MODEL in ACPI 1.0)
        b.u8(0)  // preferred PM profile: unspecified
        b.u16(UInt16(ACPIPM.sciIRQ))  // SCI_INT
        b.u32(0)  // SMI_CMD: none, ACPI mode is always on
        b.u8(0); b.u8(0); b.u8(0); b.u8(0)  // ACPI_ENABLE, ACPI_DISABLE, S4BIOS_REQ, PSTATE_CNT
        b.u32(UInt32(ACPIPM.base))  // PM1a_EVT_BLK
        b.u32(0)  // PM1b_EVT_BLK
        b.u32(UInt32(ACPIPM.controlBlockAddress))  // PM1a_CNT_BLK
        b.u32(0); b.u32(0)  // PM1b_CNT_BLK, PM2_CNT_BLK
        b.u32(0)  // PM_TMR_BLK: none (optional since ACPI 5.0A; kvmclock is the clock)
        b.u32(0); b.u32(0)  // GPE0_BLK, GPE1_BLK
        b.u8(ACPIPM.eventBlockLength); b.u8(ACPIPM.controlBlockLength)
        b.u8(0); b.u8(0)  // PM2_CNT_LEN, PM_TMR_LEN
        b.u8(0); b.u8(0); b.u8(0)  // GPE0_BLK_LEN, GPE1_BLK_LEN, GPE1_BASE
        b.u8(0)  // CST_CNT
        b.u16(101); b.u16(1001)  // P_LVL2_LAT, P_LVL3_LAT: C2 and C3 not supported
        b.u16(0); b.u16(0)  // FLUSH_SIZE, FLUSH_STRIDE
        b.u8(0); b.u8(0)  // DUTY_OFFSET, DUTY_WIDTH
        b.u8(0); b.u8(0)  // DAY_ALRM, MON_ALRM
        b.u8(CMOS.century)  // CENTURY
        b.u16(bootArchitectureFlags)
        b.u8(0)  // reserved
        b.u32(fadtFlags)
        b.bytes += gas(spaceID: 1, bitWidth: 8, accessSize: 1, address: resetPort)  // RESET_REG
        b.u8(resetValue)
        b.u16(0)  // ARM_BOOT_ARCH
        b.u8(0)  // FADT minor version
        b.u64(0); b.u64(0)  // X_FIRMWARE_CTRL, X_DSDT: the 32-bit fields say it
        for _ in 0..<8 { b.bytes += [UInt8](repeating: 0, count: 12) }  // X_PM1a_EVT_BLK ... X_GPE1_BLK
        b.bytes += [UInt8](repeating: 0, count: 12 * 2)  // SLEEP_CONTROL_REG, SLEEP_STATUS_REG (hardware-reduced only)
        b.u64(0)  // hypervisor vendor identity
        return table("FACP", revision: 6, body: b.bytes)
    }

    static func facs() -> [UInt8] {
        var b = LittleEndianBytes()
        b.bytes += Array("FACS".utf8)
        b.u32(64)
        b.u32(0)  // hardware signature
        b.u32(0)  // firmware waking vector
        b.u32(0)  // global lock
        b.u32(0)  // flags
        b.u64(0)  // X firmware waking vector
        b.u8(2)  // version
        b.bytes += [UInt8](repeating: 0, count: 3 + 4 + 24)
        return b.bytes
    }

    static func dsdt(vcpuCount: Int) -> [UInt8] {
        let com1 = AML.device("COM1", [
            AML.name("_HID", AML.eisaID("PNP0501")),
            AML.name("_UID", AML.integer(1)),
            AML.name("_CRS", AML.resourceTemplate([AML.ioPort(Serial16550.com1Base, length: 8), AML.irq(serialIRQ)])),
        ])
        let keyboard = AML.device("PS2K", [
            AML.name("_HID", AML.eisaID("PNP0303")),
            AML.name("_CRS", AML.resourceTemplate([AML.ioPort(I8042.base, length: 1), AML.ioPort(I8042.base + 4, length: 1),
                                                   AML.irq(keyboardIRQ)])),
        ])
        let cpus = (0..<vcpuCount).map { i in
            AML.device(cpuName(i), [AML.name("_HID", AML.string("ACPI0007")), AML.name("_UID", AML.integer(UInt64(i)))])
        }
        let s5 = AML.name("\\_S5", AML.package([AML.integer(UInt64(ACPIPM.sleepTypeS5)), AML.integer(UInt64(ACPIPM.sleepTypeS5)),
                                                AML.integer(0), AML.integer(0)]))
        return table("DSDT", revision: 2, body: AML.scope("\\_SB", [com1, keyboard] + cpus) + s5)
    }

    /// C000, C001, ...: four characters, as AML names must be.
    static func cpuName(_ i: Int) -> String {
        let hex = String(i, radix: 16, uppercase: true)
        return "C" + String(repeating: "0", count: max(0, 3 - hex.count)) + hex
    }

    /// MADT flags: PCAT_COMPAT, there are 8259s to mask.
    static let madtPCATCompatible: UInt32 = 1
    /// Interrupt source override flags: ISA default (edge, high) for IRQ0; the SCI as QEMU
    /// declares it, level-triggered, active high (KVM's IOAPIC ignores the polarity bit and
    /// takes KVM_IRQ_LINE level 1 as asserted).
    static let isoConforming: UInt16 = 0
    static let isoLevelActiveHigh: UInt16 = 0x0d

    static func madt(apicIDs: [UInt8]) -> [UInt8] {
        var b = LittleEndianBytes()
        b.u32(localAPICAddress)
        b.u32(madtPCATCompatible)
        for (uid, apicID) in apicIDs.enumerated() {
            b.u8(0); b.u8(8); b.u8(UInt8(truncatingIfNeeded: uid)); b.u8(apicID); b.u32(1)  // Processor Local APIC, enabled
        }
        b.u8(1); b.u8(12); b.u8(ioAPICID); b.u8(0); b.u32(ioAPICAddress); b.u32(0)  // I/O APIC, GSI base 0
        b.u8(2); b.u8(10); b.u8(0); b.u8(0); b.u32(2); b.u16(isoConforming)  // ISA IRQ0 -> GSI2 (the PIT)
        b.u8(2); b.u8(10); b.u8(0); b.u8(UInt8(ACPIPM.sciIRQ)); b.u32(ACPIPM.sciIRQ); b.u16(isoLevelActiveHigh)
        b.u8(4); b.u8(6); b.u8(0xff); b.u16(0); b.u8(1)  // Local APIC NMI: all processors, LINT1
        return table("APIC", revision: 5, body: b.bytes)
    }

    // MARK: Shared pieces

    /// The 36-byte system description header, then the body; the checksum makes all bytes sum to 0.
    static func table(_ signature: String, revision: UInt8, body: [UInt8]) -> [UInt8] {
        var b = LittleEndianBytes()
        b.bytes += Array(signature.utf8)
        b.u32(UInt32(36 + body.count))
        b.u8(revision)
        b.u8(0)  // checksum
        b.bytes += oemID
        b.bytes += oemTableID
        b.u32(1)  // OEM revision
        b.bytes += creatorID
        b.u32(1)  // creator revision
        var bytes = b.bytes + body
        bytes[9] = checksum(bytes[...])
        return bytes
    }

    /// Generic Address Structure.
    static func gas(spaceID: UInt8, bitWidth: UInt8, accessSize: UInt8, address: UInt64) -> [UInt8] {
        var b = LittleEndianBytes()
        b.u8(spaceID); b.u8(bitWidth); b.u8(0); b.u8(accessSize); b.u64(address)
        return b.bytes
    }

    static func checksum(_ bytes: ArraySlice<UInt8>) -> UInt8 {
        UInt8(truncatingIfNeeded: 0 &- bytes.reduce(0) { $0 &+ UInt32($1) })
    }
}
