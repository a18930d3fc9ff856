import Machine

/// Reading the stream's layout section, and saying in words how it differs from this machine.
enum LayoutCheck {
    static func read(from reader: StreamReader) throws -> MachineLayout {
        reader.context = "reading the machine layout"
        let tag = try reader.readU8()
        guard tag == StreamFormat.Tag.layout.rawValue else {
            throw MigrationError.malformedStream("expected the layout section, found tag 0x\(String(tag, radix: 16))")
        }
        let regionCount = Int(try reader.readU32())
        guard (1...StreamFormat.maxRegions).contains(regionCount) else {
            throw MigrationError.malformedStream("layout lists \(regionCount) RAM regions (at most \(StreamFormat.maxRegions))")
        }
        var regions: [MachineLayout.RAMRange] = []
        var total: UInt64 = 0
        for index in 0..<regionCount {
            let address = try reader.readU64()
            let size = try reader.readU64()
            // Hostile sizes must not overflow the sums taken later (MachineLayout.ramSize traps).
            let (sum, overflow) = total.addingReportingOverflow(size)
            guard size % UInt64(GuestRAMRegion.pageSize) == 0, !overflow, sum <= maxRAMBytes,
                  !address.addingReportingOverflow(size).overflow else {
                throw MigrationError.malformedStream("layout lists RAM region \(index) of \(size) bytes at 0x\(String(address, radix: 16))")
            }
            total = sum
            regions.append(.init(guestAddress: address, size: size))
        }
        let vcpuCount = Int(try reader.readU32())
        guard vcpuCount <= StreamFormat.maxVCPUs else {
            throw MigrationError.malformedStream("layout lists \(vcpuCount) vCPUs (at most \(StreamFormat.maxVCPUs))")
        }
        let deviceCount = Int(try reader.readU32())
        guard deviceCount <= StreamFormat.maxDevices else {
            throw MigrationError.malformedStream("layout lists \(deviceCount) devices (at most \(StreamFormat.maxDevices))")
        }
        var devices: [String] = []
        for _ in 0..<deviceCount { devices.append(try readName(from: reader, what: "device name")) }
        return MachineLayout(ramRegions: regions, vcpuCount: vcpuCount, devices: devices)
    }

    /// Far above any machine this swiftkvm can create; only keeps arithmetic on sizes safe.
    static let maxRAMBytes: UInt64 = 1 << 52

    static func readName(from reader: StreamReader, what: String) throws -> String {
        let length = Int(try reader.readU16())
        guard length <= StreamFormat.maxNameBytes else {
            throw MigrationError.malformedStream("a \(what) claims \(length) bytes (at most \(StreamFormat.maxNameBytes))")
        }
        return String(decoding: try reader.readBytes(length), as: UTF8.self)
    }

    /// nil when the layouts match; otherwise the first difference, worded for the user.
    static func difference(stream: MachineLayout, local: MachineLayout) -> String? {
        let streamSize = safeRAMSize(stream), localSize = safeRAMSize(local)
        if streamSize != localSize {
            return "RAM size differs: stream has \(sizeText(streamSize)), this machine has \(sizeText(localSize))"
        }
        if stream.ramRegions.count != local.ramRegions.count {
            return "RAM layout differs: stream has \(stream.ramRegions.count) regions, this machine has \(local.ramRegions.count)"
        }
        for (index, (theirs, ours)) in zip(stream.ramRegions, local.ramRegions).enumerated() where theirs != ours {
            return "RAM region \(index) differs: stream has \(rangeText(theirs)), this machine has \(rangeText(ours))"
        }
        if stream.vcpuCount != local.vcpuCount {
            return "vCPU count differs: stream has \(stream.vcpuCount), this machine has \(local.vcpuCount)"
        }
        if stream.devices != local.devices {
            let missing = stream.devices.filter { !local.devices.contains($0) }
            let extra = local.devices.filter { !stream.devices.contains($0) }
            var parts: [String] = []
            if !missing.isEmpty { parts.append("this machine lacks \(missing.joined(separator: ", "))") }
            if !extra.isEmpty { parts.append("the stream lacks \(extra.joined(separator: ", "))") }
            if parts.isEmpty { parts.append("same devices in a different order") }
            return "device list differs: " + parts.joined(separator: "; ")
        }
        return nil
    }

    /// The RAM size, saturating instead of trapping on a hostile layout.
    private static func safeRAMSize(_ layout: MachineLayout) -> UInt64 {
        layout.ramRegions.reduce(UInt64(0)) { total, range in
            let (sum, overflow) = total.addingReportingOverflow(range.size)
            return overflow ? .max : sum
        }
    }

    static func sizeText(_ bytes: UInt64) -> String {
        let mib: UInt64 = 1 << 20
        if bytes % mib == 0 { return "\(bytes / mib) MiB" }
        if bytes % 1024 == 0 { return "\(bytes / 1024) KiB" }
        return "\(bytes) bytes"
    }

    private static func rangeText(_ range: MachineLayout.RAMRange) -> String {
        "\(sizeText(range.size)) at 0x\(String(range.guestAddress, radix: 16))"
    }
}
