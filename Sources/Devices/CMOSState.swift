/// The RTC/CMOS chip's memory and index register. The time registers are not stored: they are
/// read from the host clock, so a migrated guest sees the destination's (synchronised) time.
public struct CMOSState: DeviceState, Sendable {
    public static let version: UInt32 = 1
    public static let minimumVersion: UInt32 = 1
    public static let ramSize = 128

    /// Register selected through port 0x70.
    public var index: UInt8 = 0
    /// Bit 7 of the last index write; kept for guests that read it back through their own state.
    public var nmiMasked = false
    /// All 128 bytes, including status registers A-D.
    public var ram: [UInt8]

    public init() {
        ram = [UInt8](repeating: 0, count: Self.ramSize)
        ram[Int(CMOS.statusA)] = 0x26   // 32.768 kHz time base, 1.024 kHz periodic rate
        ram[Int(CMOS.statusB)] = CMOS.statusB24Hour
        ram[Int(CMOS.statusD)] = CMOS.statusDValidRAM
    }

    public func encode(into writer: inout ByteWriter) {
        writer.write(index)
        writer.write(nmiMasked)
        writer.writeBytes(ram)
    }

    public init(from reader: inout ByteReader, version: UInt32) throws {
        index = try reader.read(UInt8.self, field: "cmos index")
        guard index < Self.ramSize else {
            throw StateDecodingError.invalidValue(field: "cmos index", value: UInt64(index))
        }
        nmiMasked = try reader.readBool(field: "cmos NMI mask")
        ram = try reader.readBytes(maximumCount: Self.ramSize, field: "cmos RAM")
        guard ram.count == Self.ramSize else {
            throw StateDecodingError.invalidValue(field: "cmos RAM length", value: UInt64(ram.count))
        }
    }
}
