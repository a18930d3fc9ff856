import CKVM

/// Everything KVM holds for one vCPU, as kvm-state.md lists it.
public struct VCPUState {
    public var mpState = kvm_mp_state()
    public var regs = kvm_regs()
    public var sregs = kvm_sregs()
    public var xsave: [UInt8] = []
    public var xcrs = kvm_xcrs()
    public var debugRegs = kvm_debugregs()
    public var lapic = kvm_lapic_state()
    public var tscKHz: UInt32 = 0
    public var cpuid: [kvm_cpuid_entry2] = []
    public var msrs: [(index: UInt32, value: UInt64)] = []
    public var events = kvm_vcpu_events()

    public init() {}

    enum Field: UInt32 {
        case mpState = 1, regs, sregs, xsave, xcrs, debugRegs, lapic, tscKHz, cpuid, msrs, events
    }

    /// Upper bounds for the variable-size fields, so a hostile stream cannot make us allocate.
    public static let maxXSAVEBytes = 1 << 16
    public static let maxCPUIDEntries = 256
    public static let maxMSRs = 1024

    public func encodedFields() -> [(tag: UInt32, bytes: [UInt8])] {
        var msrBytes: [UInt8] = []
        msrBytes.reserveCapacity(msrs.count * 12)
        for m in msrs {
            msrBytes += PlainData.bytes(of: m.index.littleEndian) + PlainData.bytes(of: m.value.littleEndian)
        }
        return [
            (Field.mpState.rawValue, PlainData.bytes(of: mpState)),
            (Field.regs.rawValue, PlainData.bytes(of: regs)),
            (Field.sregs.rawValue, PlainData.bytes(of: sregs)),
            (Field.xsave.rawValue, xsave),
            (Field.xcrs.rawValue, PlainData.bytes(of: xcrs)),
            (Field.debugRegs.rawValue, PlainData.bytes(of: debugRegs)),
            (Field.lapic.rawValue, PlainData.bytes(of: lapic)),
            (Field.tscKHz.rawValue, PlainData.bytes(of: tscKHz.littleEndian)),
            (Field.cpuid.rawValue, PlainData.bytes(ofArray: cpuid)),
            (Field.msrs.rawValue, msrBytes),
            (Field.events.rawValue, PlainData.bytes(of: events)),
        ]
    }

    public init(fields: [(tag: UInt32, bytes: [UInt8])]) throws {
        var seen = Set<UInt32>()
        for (tag, bytes) in fields {
            guard let field = Field(rawValue: tag) else { throw StateFieldError.unknownField(tag) }
            guard seen.insert(tag).inserted else { throw StateFieldError.badValue(field: "vCPU", detail: "field \(tag) appears twice") }
            switch field {
            case .mpState: mpState = try Self.decode(bytes, "MP state", zero: kvm_mp_state())
            case .regs: regs = try Self.decode(bytes, "registers", zero: kvm_regs())
            case .sregs: sregs = try Self.decode(bytes, "special registers", zero: kvm_sregs())
            case .xsave:
                guard bytes.count >= MemoryLayout<kvm_xsave>.size, bytes.count <= Self.maxXSAVEBytes else {
                    throw StateFieldError.wrongSize(field: "XSAVE", got: bytes.count, expected: MemoryLayout<kvm_xsave>.size)
                }
                xsave = bytes
            case .xcrs: xcrs = try Self.decode(bytes, "XCRs", zero: kvm_xcrs())
            case .debugRegs: debugRegs = try Self.decode(bytes, "debug registers", zero: kvm_debugregs())
            case .lapic: lapic = try Self.decode(bytes, "LAPIC", zero: kvm_lapic_state())
            case .tscKHz: tscKHz = UInt32(littleEndian: try Self.decode(bytes, "TSC frequency", zero: UInt32(0)))
            case .cpuid:
                guard let entries = PlainData.array(kvm_cpuid_entry2.self, from: bytes, zero: kvm_cpuid_entry2()),
                      entries.count <= Self.maxCPUIDEntries else {
                    throw StateFieldError.badValue(field: "CPUID", detail: "\(bytes.count) bytes")
                }
                cpuid = entries
            case .msrs:
                guard bytes.count % 12 == 0, bytes.count / 12 <= Self.maxMSRs else {
                    throw StateFieldError.badValue(field: "MSR", detail: "\(bytes.count) bytes")
                }
                msrs = stride(from: 0, to: bytes.count, by: 12).map { at in
                    let index = bytes[at..<at + 4].reversed().reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
                    let value = bytes[at + 4..<at + 12].reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
                    return (index, value)
                }
            case .events: events = try Self.decode(bytes, "vCPU events", zero: kvm_vcpu_events())
            }
        }
        let all = Set([Field.mpState, .regs, .sregs, .xsave, .xcrs, .debugRegs, .lapic, .tscKHz, .cpuid, .msrs, .events].map(\.rawValue))
        if let missing = all.subtracting(seen).min() {
            throw StateFieldError.missing("vCPU field \(Field(rawValue: missing).map { "\($0)" } ?? "\(missing)")")
        }
    }

    /// Whether this state, decoded from a stream, fits the local vCPU: KVM_SET_XSAVE copies
    /// the vCPU's full XSAVE size from the buffer whatever its length, and KVM_SET_MSRS stops
    /// at the first MSR it does not handle. `xsaveSize` is the local size (at least
    /// `kvm_xsave`'s); `allowed` the local rule for which MSRs a state holds, applied to this
    /// state's own CPUID (the one that will be set).
    public func checkFits(xsaveSize: Int, msrs allowed: StateMSRs) throws {
        let localXSAVE = max(xsaveSize, MemoryLayout<kvm_xsave>.size)
        guard xsave.count == localXSAVE else {
            throw StateFieldError.wrongSize(field: "XSAVE", got: xsave.count, expected: localXSAVE)
        }
        let known = Set(allowed.indices(cpuid: cpuid))
        if let foreign = msrs.first(where: { !known.contains($0.index) }) {
            throw StateFieldError.badValue(field: "MSR", detail: "MSR 0x\(String(foreign.index, radix: 16)) is not one this host's KVM saves and restores (KVM_GET_MSR_INDEX_LIST, and the MTRRs where CPUID has MTRR)")
        }
        var seen = Set<UInt32>()
        if let twice = msrs.first(where: { !seen.insert($0.index).inserted }) {
            throw StateFieldError.badValue(field: "MSR", detail: "MSR 0x\(String(twice.index, radix: 16)) appears twice")
        }
    }

    private static func decode<T>(_ bytes: [UInt8], _ name: String, zero: T) throws -> T {
        try StateFieldError.check(PlainData.value(T.self, from: bytes, zero: zero), name, bytes.count, MemoryLayout<T>.size)
    }
}
